/*
 * api_async.c - the event invoke config API (Put/Get/Update/Delete/ListFunctionEventInvokeConfigs,
 * /2019-09-25/functions/{FunctionName}/event-invoke-config[/list]) and the in-memory table the
 * dispatcher reads (async_config_find). The data rules are in async_config.c.
 *
 * A config belongs to (function, qualifier); the unqualified one is the "$LATEST" one, as in
 * Lambda (its FunctionArn ends in :$LATEST). Put replaces the whole config, Update changes the
 * fields it names and needs an existing config. Writes go to the store through the daemon's serial
 * store-write queue (serial_work.h: on a worker thread, one at a time in arrival order; a write
 * that fails or could not be queued is answered 500 ServiceException), and the table changes when
 * the write committed, so the reply never announces what memory or disk do not hold. A destination
 * must name an existing function (checked here, at Put/Update time). Loop thread only.
 */
#include <errno.h>

#include "api.h"
#include "async.h"
#include "daemon.h"
#include "log.h"
#include "sqs.h" /* esm */
#include "store.h"

#define LIST_MAX_ITEMS 50

enum eic_op { EIC_PUT, EIC_UPDATE, EIC_DELETE };

struct nb_eic_job {
    struct nb_serial_job sj;
    struct nb_daemon *d;
    struct nb_http_req *req;
    enum eic_op op;
    struct nb_eic *cfg; /* PUT/UPDATE: the new config (owned until installed) */
    char *function, *qualifier;
    char *doc; /* PUT/UPDATE: its record */
    int rc;
    struct nb_err err;
};

static struct nb_eic_table *table(struct nb_daemon *d)
{
    if (!d->eic)
        d->eic = xcalloc(1, sizeof(*d->eic));
    return d->eic;
}

static struct nb_eic **find_slot(struct nb_daemon *d, const char *function, const char *qualifier)
{
    const char *q = qualifier ? qualifier : "$LATEST";
    struct nb_eic **p = &table(d)->head;
    for (; *p; p = &(*p)->next)
        if (!strcmp((*p)->function, function) && !strcmp((*p)->qualifier, q))
            break;
    return p;
}

const struct nb_eic *async_config_find(struct nb_daemon *d, const char *function,
                                       const char *qualifier)
{
    return *find_slot(d, function, qualifier);
}

/* Inserts or replaces (consumes c). */
static void install(struct nb_daemon *d, struct nb_eic *c)
{
    struct nb_eic **p = find_slot(d, c->function, c->qualifier);
    if (*p) {
        c->next = (*p)->next;
        async_config_release(*p);
    } else {
        c->next = NULL;
    }
    *p = c;
}

static void uninstall(struct nb_daemon *d, const char *function, const char *qualifier)
{
    struct nb_eic **p = find_slot(d, function, qualifier);
    if (*p) {
        struct nb_eic *c = *p;
        *p = c->next;
        async_config_release(c);
    }
}

void async_config_forget(struct nb_daemon *d, const char *function)
{
    struct nb_eic **p = &table(d)->head;
    while (*p) {
        if (!strcmp((*p)->function, function)) {
            struct nb_eic *c = *p;
            *p = c->next;
            async_config_release(c);
        } else {
            p = &(*p)->next;
        }
    }
}

void async_config_forget_qualifier(struct nb_daemon *d, const char *function, const char *qualifier)
{
    uninstall(d, function, qualifier);
}

void async_config_free(struct nb_daemon *d)
{
    if (!d->eic)
        return;
    while (d->eic->head) {
        struct nb_eic *c = d->eic->head;
        d->eic->head = c->next;
        async_config_release(c);
    }
    free(d->eic);
    d->eic = NULL;
}

static json_t *config_json(struct nb_daemon *d, const struct nb_eic *c)
{
    return async_config_json(d->cfg.region, d->cfg.account_id, c);
}

static int load_one(void *data, const char *function, const char *qualifier, const char *doc)
{
    struct nb_daemon *d = data;
    struct nb_fn *fn = registry_find(d, function);
    struct nb_err err = {0};
    if (!fn || !registry_resolve(d, fn, qualifier, &err))
        return 0; /* its function, version or alias was deleted (a write raced the delete) */
    struct nb_eic *c = async_config_from_record(function, qualifier, doc);
    if (!c) {
        log_err("skipping unreadable event invoke config function=%s qualifier=%s", function,
                qualifier);
        return 0;
    }
    install(d, c);
    return 0;
}

int async_config_load(struct nb_daemon *d, struct nb_err *err)
{
    table(d);
    int rc = store_eic_each(d->store, load_one, d, err);
    return rc < 0 ? err_prefix(err, "cannot load event invoke configs") : 0;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Resolves the function and qualifier of a request; false with the reply sent. */
static bool target(struct nb_daemon *d, struct nb_http_req *req, const struct nb_route_match *m,
                   char **name, char **qualifier)
{
    if (!api_function_ref(req, m, name, qualifier))
        return false;
    const char *q = http_req_query(req, "Qualifier");
    if (q && *qualifier && strcmp(q, *qualifier)) {
        api_error(req, 400, "InvalidParameterValueException",
                  "The derived qualifier from the function name does not match the specified "
                  "qualifier.");
        return false;
    }
    if (!*qualifier)
        *qualifier = xstrdup(q && *q ? q : "$LATEST");
    struct nb_fn *fn = registry_find(d, *name);
    if (!fn) {
        api_error(req, 404, "ResourceNotFoundException",
                  "Function not found: arn:aws:lambda:%s:%s:function:%s:%s", d->cfg.region,
                  d->cfg.account_id, *name, *qualifier);
        return false;
    }
    struct nb_err err = {0};
    if (!registry_resolve(d, fn, *qualifier, &err)) {
        api_error_from(req, &err);
        return false;
    }
    return true;
}

static void not_found(struct nb_daemon *d, struct nb_http_req *req, const char *name,
                      const char *qualifier)
{
    api_error(req, 404, "ResourceNotFoundException",
              "The function arn:aws:lambda:%s:%s:function:%s:%s doesn't have an EventInvokeConfig",
              d->cfg.region, d->cfg.account_id, name, qualifier);
}

static bool target_exists(struct nb_daemon *d, const char *function, const char *qualifier)
{
    struct nb_fn *fn = registry_find(d, function);
    struct nb_err err = {0};
    return fn && registry_resolve(d, fn, qualifier, &err);
}

static void job_work(void *data)
{
    struct nb_eic_job *j = data;
    if (j->op == EIC_DELETE)
        j->rc = store_eic_delete(j->d->store, j->function, j->qualifier, &j->err);
    else
        j->rc = store_eic_put(j->d->store, j->function, j->qualifier, j->doc, &j->err);
}

static void job_free(struct nb_eic_job *j)
{
    async_config_release(j->cfg);
    free(j->function);
    free(j->qualifier);
    free(j->doc);
    free(j);
}

static void job_done(void *data, int status);

static void job_queue(struct nb_daemon *d, struct nb_eic_job *j)
{
    serial_work_submit(&d->store_writes, &j->sj, j, job_work, job_done);
}

/* Queues a delete with no client of (function, qualifier): from job_done, when a config's target
 * went away while its write waited. */
static void cleanup_queue(struct nb_daemon *d, const char *function, const char *qualifier)
{
    struct nb_eic_job *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->op = EIC_DELETE;
    j->function = xstrdup(function);
    j->qualifier = xstrdup(qualifier);
    job_queue(d, j);
}

/* Answers the request (if any) and frees the job, on every path. */
static void job_done(void *data, int status)
{
    struct nb_eic_job *j = data;
    struct nb_daemon *d = j->d;
    j->rc = api_work_result(status, j->rc, &j->err);
    if (!j->req) { /* cleanup_queue's delete of a config whose target went away */
        if (j->rc < 0 && j->rc != -ENOENT)
            log_err("event invoke config cleanup failed function=%s qualifier=%s err=\"%s\"",
                    j->function, j->qualifier, j->err.msg);
    } else if (j->rc == -ENOENT) {
        not_found(d, j->req, j->function, j->qualifier);
    } else if (j->rc < 0) {
        log_err("event invoke config write failed function=%s err=\"%s\"", j->function, j->err.msg);
        api_error(j->req, 500, "ServiceException", "%s", j->err.msg);
    } else if (j->op == EIC_DELETE) {
        uninstall(d, j->function, j->qualifier);
        api_empty(j->req, 204);
    } else if (!target_exists(d, j->function, j->qualifier)) {
        /* the function, version or alias was deleted while this write waited: its row must go
         * too, or a later function, alias of the same name, or restart would find it */
        api_error(j->req, 404, "ResourceNotFoundException",
                  "Function not found: arn:aws:lambda:%s:%s:function:%s:%s", d->cfg.region,
                  d->cfg.account_id, j->function, j->qualifier);
        cleanup_queue(d, j->function, j->qualifier);
    } else {
        json_t *o = config_json(d, j->cfg);
        install(d, steal_ptr(j->cfg));
        api_json(j->req, 200, o);
    }
    job_free(j);
}

/* A parsed destination must name an existing function (and qualifier); false with the reply
 * sent. */
static bool destination_exists(struct nb_daemon *d, struct nb_http_req *req, const char *arn)
{
    if (!arn)
        return true;
    _cleanup_free_ char *name = NULL, *q = NULL;
    struct nb_err err = {0};
    int kind = async_destination_parse(d->cfg.region, d->cfg.account_id, arn, &name, &q, &err);
    if (kind < 0) {
        api_error_from(req, &err);
        return false;
    }
    bool fifo;
    if (kind == 1) { /* esm: a queue of this server */
        if (sqs_queue_info(d->sqs, arn, &fifo) == 0)
            return true;
        api_error(req, 400, "InvalidParameterValueException",
                  "The destination ARN %s is invalid. (no such queue)", arn);
        return false;
    }
    struct nb_fn *fn = registry_find(d, name);
    struct nb_err rerr = {0};
    if (!fn || !registry_resolve(d, fn, q, &rerr)) {
        api_error(req, 400, "InvalidParameterValueException",
                  "The destination ARN %s is invalid. (no such function)", arn);
        return false;
    }
    return true;
}

static void put_or_update(struct nb_http_req *req, const struct nb_route_match *m, void *data,
                          bool update)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *name = NULL, *qualifier = NULL;
    if (!target(d, req, m, &name, &qualifier))
        return;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    const struct nb_eic *cur = async_config_find(d, name, qualifier);
    struct nb_eic *c = NULL;
    const char *type = NULL;
    struct nb_err err = {0};
    if (async_config_parse(d->cfg.region, d->cfg.account_id, name, qualifier, body,
                           update ? cur : NULL, &c, &type, &err) < 0) {
        api_error(req, 400, type, "%s", err.msg);
    } else if (update && !cur) {
        not_found(d, req, name, qualifier);
    } else if (destination_exists(d, req, c->on_success) &&
               destination_exists(d, req, c->on_failure)) {
        struct nb_eic_job *j = xcalloc(1, sizeof(*j));
        j->d = d;
        j->req = req;
        j->op = update ? EIC_UPDATE : EIC_PUT;
        j->function = steal_ptr(name);
        j->qualifier = steal_ptr(qualifier);
        json_t *o = config_json(d, c);
        j->doc = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!j->doc)
            BUG("json_dumps failed");
        j->cfg = steal_ptr(c);
        job_queue(d, j);
    }
    async_config_release(c);
    json_decref(body);
}

static void h_put(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    put_or_update(req, m, data, false);
}

static void h_update(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    put_or_update(req, m, data, true);
}

static void h_get(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *name = NULL, *qualifier = NULL;
    if (!target(d, req, m, &name, &qualifier))
        return;
    const struct nb_eic *c = async_config_find(d, name, qualifier);
    if (!c) {
        not_found(d, req, name, qualifier);
        return;
    }
    api_json(req, 200, config_json(d, c));
}

static void h_delete(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *name = NULL, *qualifier = NULL;
    if (!target(d, req, m, &name, &qualifier))
        return;
    struct nb_eic_job *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->req = req;
    j->op = EIC_DELETE;
    j->function = steal_ptr(name);
    j->qualifier = steal_ptr(qualifier);
    job_queue(d, j);
}

static int cmp_eic(const void *a, const void *b)
{
    const struct nb_eic *x = *(const struct nb_eic *const *)a;
    const struct nb_eic *y = *(const struct nb_eic *const *)b;
    return strcmp(x->qualifier, y->qualifier);
}

/* ListFunctionEventInvokeConfigs: every qualifier's config, by qualifier; Marker is the index of
 * the next item. */
static void h_list(struct nb_http_req *req, const struct nb_route_match *m, void *data)
{
    struct nb_daemon *d = data;
    _cleanup_free_ char *name = NULL, *qualifier = NULL;
    if (!api_function_ref(req, m, &name, &qualifier))
        return;
    if (!registry_find(d, name)) {
        api_error(req, 404, "ResourceNotFoundException",
                  "Function not found: arn:aws:lambda:%s:%s:function:%s", d->cfg.region,
                  d->cfg.account_id, name);
        return;
    }
    int64_t max = LIST_MAX_ITEMS, start = 0;
    const char *mi = http_req_query(req, "MaxItems"), *mk = http_req_query(req, "Marker");
    if (mi && parse_i64(mi, 1, LIST_MAX_ITEMS, &max) < 0) {
        api_error(req, 400, "ValidationException",
                  "1 validation error detected: Value '%s' at 'maxItems' failed to satisfy "
                  "constraint: Member must have value between 1 and %d",
                  mi, LIST_MAX_ITEMS);
        return;
    }
    if (mk && *mk && parse_i64(mk, 0, INT32_MAX, &start) < 0) {
        api_error(req, 400, "InvalidParameterValueException", "Invalid marker: %s", mk);
        return;
    }
    size_t n = 0, cap = 8;
    const struct nb_eic **v = xmalloc(cap * sizeof(*v));
    for (const struct nb_eic *c = table(d)->head; c; c = c->next) {
        if (strcmp(c->function, name))
            continue;
        if (n == cap)
            v = xrealloc(v, (cap *= 2) * sizeof(*v));
        v[n++] = c;
    }
    qsort(v, n, sizeof(*v), cmp_eic);
    json_t *arr = json_array();
    size_t i = (size_t)start;
    for (; i < n && (int64_t)json_array_size(arr) < max; i++)
        json_array_append_new(arr, config_json(d, v[i]));
    json_t *o = json_pack("{s:o}", "FunctionEventInvokeConfigs", arr);
    if (i < n) {
        char next[24];
        snprintf(next, sizeof(next), "%zu", i);
        json_object_set_new(o, "NextMarker", json_string(next));
    }
    free(v);
    api_json(req, 200, o);
}

void api_async_routes(struct nb_router *r, struct nb_daemon *d)
{
    const char *path = "/2019-09-25/functions/{FunctionName}/event-invoke-config";
    router_add(r, "PUT", path, "lambda:PutFunctionEventInvokeConfig", h_put, d);
    router_add(r, "POST", path, "lambda:UpdateFunctionEventInvokeConfig", h_update, d);
    router_add(r, "GET", path, "lambda:GetFunctionEventInvokeConfig", h_get, d);
    router_add(r, "DELETE", path, "lambda:DeleteFunctionEventInvokeConfig", h_delete, d);
    router_add(r, "GET", "/2019-09-25/functions/{FunctionName}/event-invoke-config/list",
               "lambda:ListFunctionEventInvokeConfigs", h_list, d);
}
