/*
 * api_invoke.c - the Invoke operation (POST /2015-03-31/functions/{FunctionName}/invocations):
 * request validation, admission against account and reserved concurrency (429 with Lambda's
 * Reason), and the choice between a warm instance (most recently used idle one) and a cold start.
 *
 * Invariant: an invocation exists only once pool_admit() admitted it; invoke.c releases the
 * admission (pool_release) when it completes. Only RequestResponse and DryRun are served; Event
 * (asynchronous) invocations are refused until durable async delivery exists.
 */
#include <errno.h>

#include "api.h"
#include "codec.h"
#include "daemon.h"
#include "instance.h"
#include "log.h"

#define SYNC_PAYLOAD_MAX 6291456
#define CLIENT_CONTEXT_MAX 3583

static void throttle(struct nb_daemon *d, struct nb_fn *fn, struct nb_http_req *req,
                     const char *reason)
{
    metrics_throttle(d, fn);
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

static void make_trace_id(struct nb_invocation *inv, const char *given)
{
    if (given && strlen(given) < sizeof(inv->trace_id) && strncmp(given, "Root=", 5) == 0) {
        snprintf(inv->trace_id, sizeof(inv->trace_id), "%s", given);
        return;
    }
    char u1[37], u2[37];
    uuid_v4(u1);
    uuid_v4(u2);
    /* Root=1-<8 hex epoch secs>-<24 hex>;Parent=<16 hex>;Sampled=0 */
    snprintf(inv->trace_id, sizeof(inv->trace_id),
             "Root=1-%08llx-%.8s%.4s%.4s%.4s%.4s;Parent=%.8s%.8s;Sampled=0",
             (unsigned long long)(now_ms() / 1000), u1, u1 + 9, u1 + 14, u1 + 19, u1 + 24, u2,
             u2 + 24);
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
    if (type && strcmp(type, "RequestResponse") && strcmp(type, "DryRun")) {
        if (!strcmp(type, "Event"))
            api_error(req, 400, "InvalidParameterValueException",
                      "Event invocations are not supported by this nimbus version yet");
        else
            api_error(req, 400, "InvalidParameterValueException",
                      "1 validation error detected: Value '%s' at 'invocationType' failed to "
                      "satisfy constraint: Member must satisfy enum value set: [Event, "
                      "RequestResponse, DryRun]",
                      type);
        return;
    }
    const char *log_type = http_req_header(req, "X-Amz-Log-Type");
    if (log_type && strcmp(log_type, "None") && strcmp(log_type, "Tail")) {
        api_error(req, 400, "InvalidParameterValueException",
                  "1 validation error detected: Value '%s' at 'logType' failed to satisfy "
                  "constraint: Member must satisfy enum value set: [None, Tail]",
                  log_type);
        return;
    }
    if (req->body_len > SYNC_PAYLOAD_MAX) {
        api_error(req, 413, "RequestTooLargeException",
                  "Request must be smaller than %d bytes for the InvokeFunction operation",
                  SYNC_PAYLOAD_MAX);
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
    const char *reason = pool_admit(d, fn, cfg);
    if (reason) {
        free(cc);
        throttle(d, fn, req, reason);
        return;
    }
    struct nb_invocation *inv = xcalloc(1, sizeof(*inv));
    inv->d = d;
    fn_ref(fn);
    inv->fn = fn;
    inv->cfg = function_ref(cfg);
    uuid_v4(inv->request_id);
    inv->client_context = cc;
    /* versions: cfg->arn is already ":N"; an alias or ":$LATEST" is passed on as the caller wrote
     * it (the runtime's Lambda-Runtime-Invoked-Function-Arn) */
    if (qualifier && (strcmp(qualifier, cfg->version) != 0 || !strcmp(qualifier, "$LATEST")))
        inv->invoked_arn = xasprintf("%s:%s", fn->cfg->arn, qualifier);
    inv->tail = log_type && !strcmp(log_type, "Tail");
    make_trace_id(inv, http_req_header(req, "X-Amzn-Trace-Id"));
    inv->admitted_ns = mono_ns();
    inv->deadline_ms = now_ms() + (uint64_t)inv->cfg->timeout_s * 1000;
    if (req->body_len) {
        inv->payload = http_req_steal_body(req, &inv->payload_len);
    } else {
        inv->payload = xstrdup("{}");
        inv->payload_len = 2;
    }
    /* A client that goes away does not stop the invocation; its reply is then dropped by http.c
     * (every request gets exactly one reply, even a dead one). */
    inv->client = req;
    uv_timer_init(d->loop, &inv->timer);
    inv->timer.data = inv;
    invoke_arm_timeout(inv);
    struct nb_instance *inst = pool_take_idle(fn, cfg);
    if (inst)
        instance_assign(inst, inv);
    else
        instance_start(d, inv);
}

void api_invoke_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "POST", "/2015-03-31/functions/{FunctionName}/invocations",
               "lambda:InvokeFunction", handle_invoke, d);
}
