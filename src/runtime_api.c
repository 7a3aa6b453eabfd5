/*
 * runtime_api.c - the Lambda Runtime API (LAMBDA.md §1) as seen by one instance: `next` long
 * polls, invocation response/error, init error. The listener a request arrived on identifies the
 * instance (one http server per network namespace, listening on TCP 127.0.0.1:9001 and on the
 * abstract Unix socket @nimbus-runtime-api; both are the same API here, whichever transport a
 * request came on), so there is no token.
 *
 * State rules (RIE's): `next` while an invocation is unanswered, or a second `next`, is an invalid
 * state transition (403); a response or error for an id that is not the current invocation is
 * 400 InvalidRequestID; init/error is only valid before the first `next`. Responses over
 * 6 MiB + 100 B are refused with 413 and the caller gets Function.ResponseSizeTooLarge.
 */
#include <errno.h>

#include "cgroup.h"
#include "daemon.h"
#include "instance.h"
#include "log.h"

#define PREFIX "/2018-06-01/runtime/"
#define RESPONSE_MAX 6291556

static void reply_json(struct nb_http_req *req, int status, const char *body)
{
    struct nb_http_header h[] = {{"Content-Type", "application/json"}};
    http_reply(req, status, h, 1, body, strlen(body));
}

static void reply_error(struct nb_http_req *req, int status, const char *type, const char *msg)
{
    json_t *o = json_pack("{s:s, s:s}", "errorMessage", msg, "errorType", type);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    struct nb_http_header h[] = {{"Content-Type", "application/json"}};
    http_reply_owned(req, status, h, 1, body, strlen(body));
}

static void bad_transition(struct nb_http_req *req)
{
    reply_error(req, 403, "InvalidStateTransition", "State transition is not allowed");
}

static void on_next_abort(struct nb_http_req *req, void *data)
{
    struct nb_instance *inst = data;
    if (inst->next_req != req)
        return;
    inst->next_req = NULL;
    req->on_abort = NULL;
    http_reply(req, 500, NULL, 0, NULL, 0); /* frees the dead request */
    /* a runtime that dropped its long poll cannot be handed work: stop it */
    instance_kill(inst, "runtime closed its next connection");
}

/* The instance finished init: give it the CPU share its memory buys (like Lambda). */
static void end_init(struct nb_instance *inst)
{
    inst->init_done = true;
    if (inst->inv) {
        inst->inv->init_ms = (double)(mono_ns() - inst->started_ns) / 1e6;
        metrics_cold_start(inst->d, inst->fn, inst->inv->cfg, inst->inv->init_ms);
    }
    uint64_t quota = (uint64_t)NB_CPU_PERIOD_US * (uint64_t)inst->cfg->memory_mb / NB_MB_PER_VCPU;
    struct nb_err err = {0};
    if (cgroup_set_cpu_quota(&inst->cg, quota < 1000 ? 1000 : quota, &err) < 0)
        log_warn("cannot set cpu quota function=%s err=\"%s\"", inst->fn->name, err.msg);
}

static void handle_next(struct nb_instance *inst, struct nb_http_req *req)
{
    if (inst->next_req || (inst->state == INST_BUSY && inst->inv) || inst->killed) {
        bad_transition(req);
        return;
    }
    inst->next_req = req;
    req->on_abort = on_next_abort;
    req->abort_data = inst;
    if (!inst->init_done)
        end_init(inst);
    if (inst->inv) {
        /* not before the spawner handed over the stdout/stderr pipes: what the function prints
         * must be read (instance_drain_output) before its END; on_spawned delivers then */
        if (inst->spawned)
            invoke_deliver(inst, inst->inv);
        return;
    }
    if (inst->retire || inst->fn->removed || inst->d->draining) {
        instance_kill(inst, "retired");
        return;
    }
    pool_push_idle(inst);
}

/* The invocation id in ".../invocation/<id>/<what>" must be the current one. */
static struct nb_invocation *current(struct nb_instance *inst, struct nb_http_req *req,
                                     const char *id, size_t id_len)
{
    struct nb_invocation *inv = inst->inv;
    if (!inv || inst->state != INST_BUSY || id_len != strlen(inv->request_id) ||
        memcmp(id, inv->request_id, id_len)) {
        reply_error(req, 400, "InvalidRequestID", "Invalid request ID");
        return NULL;
    }
    return inv;
}

static void fail_too_large(struct nb_instance *inst, const char *msg)
{
    size_t len;
    char *body = invoke_error_json("Function.ResponseSizeTooLarge", msg, &len);
    instance_drain_output(inst);
    invoke_complete(inst->inv, NB_FN_ERROR, body, len);
}

void runtime_api_too_large(struct nb_instance *inst)
{
    if (inst->inv && inst->state == INST_BUSY && inst->inv->start_ns)
        fail_too_large(inst, "Response payload size exceeded maximum allowed payload size "
                             "(6291556 bytes).");
}

static void handle_response(struct nb_instance *inst, struct nb_http_req *req, const char *id,
                            size_t id_len)
{
    struct nb_invocation *inv = current(inst, req, id, id_len);
    if (!inv)
        return;
    const char *mode = http_req_header(req, "Lambda-Runtime-Function-Response-Mode");
    if (mode && strcasecmp(mode, "buffered")) {
        reply_error(req, 400, "InvalidFunctionResponseMode",
                    "Response streaming is not supported by this nimbus version");
        size_t len;
        char *body = invoke_error_json("Runtime.InvalidResponseModeHeader",
                                       "response streaming is not supported", &len);
        instance_drain_output(inst);
        invoke_complete(inv, NB_FN_ERROR, body, len);
        return;
    }
    if (req->body_len > RESPONSE_MAX) {
        /* read the size first: the reply ends the request and frees its body */
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Response payload size (%zu bytes) exceeded maximum allowed payload size "
                 "(6291556 bytes).",
                 req->body_len);
        reply_error(req, 413, "RequestEntityTooLarge",
                    "Exceeded maximum allowed payload size (6291556 bytes).");
        fail_too_large(inst, msg);
        return;
    }
    size_t len;
    char *body = http_req_steal_body(req, &len);
    reply_json(req, 202, "{\"status\":\"OK\"}");
    instance_drain_output(inst);
    invoke_complete(inv, NB_OK, body, len);
}

/* Lambda's error body from what the runtime posted: its JSON when it is an object, otherwise
 * one built from the error-type header. */
static char *error_body(struct nb_http_req *req, size_t *len)
{
    const char *type = http_req_header(req, "Lambda-Runtime-Function-Error-Type");
    json_t *j = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    if (j && json_is_object(j)) {
        json_decref(j);
        return http_req_steal_body(req, len);
    }
    json_decref(j);
    return invoke_error_json(type && *type ? type : "Runtime.Unknown",
                             req->body_len ? req->body : "Unknown error", len);
}

static void handle_error(struct nb_instance *inst, struct nb_http_req *req, const char *id,
                         size_t id_len)
{
    struct nb_invocation *inv = current(inst, req, id, id_len);
    if (!inv)
        return;
    size_t len;
    char *body = error_body(req, &len);
    reply_json(req, 202, "{\"status\":\"OK\"}");
    instance_drain_output(inst);
    invoke_complete(inv, NB_FN_ERROR, body, len);
}

static void handle_init_error(struct nb_instance *inst, struct nb_http_req *req)
{
    if (inst->init_done) {
        bad_transition(req);
        return;
    }
    size_t len;
    char *body = error_body(req, &len);
    reply_json(req, 202, "{\"status\":\"OK\"}");
    instance_drain_output(inst);
    struct nb_invocation *inv = inst->inv;
    if (inv) {
        inv->init_ms = (double)(mono_ns() - inst->started_ns) / 1e6;
        invoke_complete(inv, NB_FN_ERROR, body, len);
    } else {
        free(body);
    }
    inst->init_failed = true;
    instance_kill(inst, "init error");
}

void runtime_api_orphan(struct nb_http_req *req)
{
    reply_error(req, 500, "Runtime.Unknown", "no instance owns this runtime API");
}

void runtime_api_handle(struct nb_instance *inst, struct nb_http_req *req)
{
    const char *p = req->path;
    bool get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST");
    if (strncmp(p, PREFIX, strlen(PREFIX))) {
        if (!strncmp(p, "/2022-07-01/telemetry", 21) || !strncmp(p, "/2020-08-15/logs", 16)) {
            reply_error(req, 202, "Telemetry.NotSupported", "Telemetry API is not supported");
            return;
        }
        reply_error(req, 404, "NotFound", "unknown Runtime API path");
        return;
    }
    p += strlen(PREFIX);
    if (!strcmp(p, "invocation/next") && get) {
        handle_next(inst, req);
        return;
    }
    if (!strcmp(p, "init/error") && post) {
        handle_init_error(inst, req);
        return;
    }
    if (!strncmp(p, "invocation/", 11) && post) {
        const char *id = p + 11;
        const char *slash = strchr(id, '/');
        if (slash && !strcmp(slash, "/response")) {
            handle_response(inst, req, id, (size_t)(slash - id));
            return;
        }
        if (slash && !strcmp(slash, "/error")) {
            handle_error(inst, req, id, (size_t)(slash - id));
            return;
        }
    }
    reply_error(req, 404, "NotFound", "unknown Runtime API path");
}
