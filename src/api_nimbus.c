/*
 * api_nimbus.c - nimbus' own endpoints on the API listener: GET /healthz, GET /metrics
 * (Prometheus text format) and GET /nimbus/v1/functions/{FunctionName}/logs (the function log
 * reader behind `nimbus logs`).
 */
#include <errno.h>

#include "api.h"
#include "daemon.h"
#include "logs.h"
#include "metrics.h"

static void handle_healthz(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_http_header h[] = {{"Content-Type", "text/plain"}};
    http_reply(req, 200, h, 1, "ok\n", 3);
}

static void handle_metrics(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_buf b = NB_BUF_INIT;
    metrics_render(d, &b);
    size_t len;
    char *body = buf_detach(&b, &len);
    struct nb_http_header h[] = {{"Content-Type", "text/plain; version=0.0.4"}};
    http_reply_owned(req, 200, h, 1, body, len);
}

static void handle_logs(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_err err = {0};
    _cleanup_free_ char *name = NULL, *qualifier = NULL;
    if (!api_function_ref(req, m, &name, &qualifier))
        return;
    int64_t since = 0;
    const char *s = http_req_query(req, "since");
    if (s && parse_i64(s, 0, INT64_MAX, &since) < 0) {
        api_error(req, 400, "InvalidParameterValueException", "since must be epoch milliseconds");
        return;
    }
    json_t *events;
    char *token;
    if (logs_read(d->logs, name, (uint64_t)since, http_req_query(req, "nextToken"), &events, &token,
                  &err) < 0) {
        if (err.code == ENOENT && registry_find(d, name)) {
            api_json(req, 200, json_pack("{s:[], s:s}", "events", "nextToken", ""));
            return;
        }
        api_error_from(req, &err);
        return;
    }
    api_json(req, 200,
             json_pack("{s:o, s:s%}", "events", events, "nextToken", token, strlen(token)));
    free(token);
}

void api_nimbus_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "GET", "/healthz", NULL, handle_healthz, d);
    router_add(r, "GET", "/metrics", NULL, handle_metrics, d);
    router_add(r, "GET", "/nimbus/v1/functions/{FunctionName}/logs", "nimbus:GetLogs", handle_logs,
               d);
}
