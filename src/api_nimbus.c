/*
 * api_nimbus.c - nimbus' own endpoints on the API listener: GET /healthz, GET /metrics
 * (Prometheus text format) and GET /nimbus/v1/functions/{FunctionName}/logs (the function log
 * reader behind `nimbus logs`).
 */
#include <errno.h>

#include "api.h"
#include "daemon.h"
#include "logs.h"

static void handle_healthz(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_http_header h[] = {{"Content-Type", "text/plain"}};
    http_reply(req, 200, h, 1, "ok\n", 3);
}

static void handle_metrics(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    struct nb_buf b = NB_BUF_INIT;
    buf_appendf(&b,
                "# HELP nimbus_functions Functions deployed.\n# TYPE nimbus_functions gauge\n"
                "nimbus_functions %zu\n",
                d->fn_count);
    buf_appendf(&b,
                "# HELP nimbus_instances Live function instances.\n"
                "# TYPE nimbus_instances gauge\nnimbus_instances %lld\n",
                (long long)d->instances);
    buf_appendf(&b,
                "# HELP nimbus_concurrent_executions Invocations in flight.\n"
                "# TYPE nimbus_concurrent_executions gauge\nnimbus_concurrent_executions %lld\n",
                (long long)d->inflight);
    const struct {
        const char *name, *help;
        uint64_t v;
    } counters[] = {
        {"nimbus_invocations_total", "Completed invocations.", d->stats.invocations},
        {"nimbus_function_errors_total", "Invocations ending in a function error.",
         d->stats.function_errors},
        {"nimbus_timeouts_total", "Invocations that timed out.", d->stats.timeouts},
        {"nimbus_throttles_total", "Invocations refused with 429.", d->stats.throttles},
        {"nimbus_cold_starts_total", "Invocations that started an instance.", d->stats.cold_starts},
    };
    for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
        buf_appendf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[i].name,
                    counters[i].help, counters[i].name, counters[i].name,
                    (unsigned long long)counters[i].v);
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
    router_add(r, "GET", "/healthz", handle_healthz, d);
    router_add(r, "GET", "/metrics", handle_metrics, d);
    router_add(r, "GET", "/nimbus/v1/functions/{FunctionName}/logs", handle_logs, d);
}
