/*
 * api_nimbus.c - nimbus' own endpoints on the API listener: GET /healthz, GET /metrics
 * (Prometheus text format) and GET /nimbus/v1/functions/{FunctionName}/logs (the function log
 * reader behind `nimbus logs`) and GET /nimbus/v1/audit (the audit log reader behind
 * `nimbus audit`; the file is read on a libuv worker thread, the request held meanwhile).
 */
#include <errno.h>

#include "api.h"
#include "audit.h"
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

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX 1000

struct audit_job {
    uv_work_t work;
    struct nb_http_req *req;
    char *path, *token;
    uint64_t since;
    size_t limit;
    int rc;
    json_t *events;
    char *next;
    struct nb_err err;
};

static void audit_job_run(uv_work_t *w)
{
    struct audit_job *j = w->data;
    j->rc = audit_read(j->path, j->since, j->token, j->limit, &j->events, &j->next, &j->err);
}

static void audit_job_done(uv_work_t *w, int status)
{
    struct audit_job *j = w->data;
    if (status < 0 && j->rc == 0) /* cancelled: cannot happen for started work, but be safe */
        j->rc = err_set(&j->err, EIO, "audit read cancelled");
    if (j->rc < 0)
        api_error_from(j->req, &j->err);
    else
        api_json(j->req, 200, json_pack("{s:o, s:s}", "events", j->events, "nextToken", j->next));
    free(j->path);
    free(j->token);
    free(j->next);
    free(j);
}

/* GET /nimbus/v1/audit?since=MS&limit=N&nextToken=T -> {"events":[record...],"nextToken":"T"} */
static void handle_audit(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    int64_t since = 0, limit = AUDIT_LIMIT_DEFAULT;
    const char *s = http_req_query(req, "since"), *l = http_req_query(req, "limit");
    if (s && parse_i64(s, 0, INT64_MAX, &since) < 0) {
        api_error(req, 400, "InvalidParameterValueException", "since must be epoch milliseconds");
        return;
    }
    if (l && parse_i64(l, 1, AUDIT_LIMIT_MAX, &limit) < 0) {
        api_error(req, 400, "InvalidParameterValueException",
                  "limit must be an integer from 1 to %d", AUDIT_LIMIT_MAX);
        return;
    }
    if (!d->audit) {
        api_error(req, 500, "ServiceException", "the audit log is not open");
        return;
    }
    struct audit_job *j = xcalloc(1, sizeof(*j));
    const char *t = http_req_query(req, "nextToken");
    j->work.data = j;
    j->req = req;
    j->path = xstrdup(audit_path(d->audit));
    j->token = t ? xstrdup(t) : NULL;
    j->since = (uint64_t)since;
    j->limit = (size_t)limit;
    int rc = uv_queue_work(d->loop, &j->work, audit_job_run, audit_job_done);
    if (rc < 0) {
        api_error(req, 500, "ServiceException", "cannot queue the audit read: %s", uv_strerror(rc));
        free(j->path);
        free(j->token);
        free(j);
    }
}

void api_nimbus_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "GET", "/healthz", NULL, handle_healthz, d);
    router_add(r, "GET", "/metrics", NULL, handle_metrics, d);
    router_add(r, "GET", "/nimbus/v1/functions/{FunctionName}/logs", "nimbus:GetLogs", handle_logs,
               d);
    router_add(r, "GET", "/nimbus/v1/audit", "nimbus:ReadAudit", handle_audit, d);
}
