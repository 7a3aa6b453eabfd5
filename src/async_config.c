/*
 * async_config.c - event invoke configs (Put/Get/Update/Delete/ListFunctionEventInvokeConfigs,
 * /2019-09-25/functions/{FunctionName}/event-invoke-config[/list]) and the in-memory table the
 * dispatcher reads (async_config_find).
 *
 * A config belongs to (function, qualifier); the unqualified one is the "$LATEST" one, as in
 * Lambda (its FunctionArn ends in :$LATEST). Put replaces the whole config (unset fields are
 * unset: the dispatcher uses Lambda's defaults, 2 retries and 6 h), Update changes the fields it
 * names and needs an existing config. Writes go to the store on a worker thread, one at a time in
 * arrival order (struct nb_eic_table's queue), and the table changes when the write committed,
 * so the reply never announces what memory or disk do not hold. Loop thread only.
 *
 * Destinations: a Lambda function ARN of this region and account, naming an existing function.
 * Queues, topics, event buses and buckets are refused for now (async_destination_parse is the
 * hook where their delivery will be dispatched).
 */
#include <errno.h>
#include <math.h>

#include "api.h"
#include "async.h"
#include "daemon.h"
#include "log.h"
#include "store.h"

#define LIST_MAX_ITEMS 50

enum eic_op { EIC_PUT, EIC_UPDATE, EIC_DELETE };

struct nb_eic_job {
    struct nb_daemon *d;
    struct nb_http_req *req;
    enum eic_op op;
    struct nb_eic *cfg; /* PUT/UPDATE: the new config (owned until installed) */
    char *function, *qualifier;
    char *doc; /* PUT/UPDATE: its record */
    int rc;
    struct nb_err err;
    uv_work_t work;
    struct nb_eic_job *next;
};

static struct nb_eic_table *table(struct nb_daemon *d)
{
    if (!d->eic)
        d->eic = xcalloc(1, sizeof(*d->eic));
    return d->eic;
}

static void eic_free(struct nb_eic *c)
{
    if (!c)
        return;
    free(c->function);
    free(c->qualifier);
    free(c->on_success);
    free(c->on_failure);
    free(c);
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
        eic_free(*p);
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
        eic_free(c);
    }
}

void async_config_forget(struct nb_daemon *d, const char *function)
{
    struct nb_eic **p = &table(d)->head;
    while (*p) {
        if (!strcmp((*p)->function, function)) {
            struct nb_eic *c = *p;
            *p = c->next;
            eic_free(c);
        } else {
            p = &(*p)->next;
        }
    }
}

void async_config_free(struct nb_daemon *d)
{
    if (!d->eic)
        return;
    while (d->eic->head) {
        struct nb_eic *c = d->eic->head;
        d->eic->head = c->next;
        eic_free(c);
    }
    free(d->eic);
    d->eic = NULL;
}

/* ---- JSON -------------------------------------------------------------------------------- */

static json_t *config_json(struct nb_daemon *d, const struct nb_eic *c)
{
    _cleanup_free_ char *arn = xasprintf("arn:aws:lambda:%s:%s:function:%s:%s", d->cfg.region,
                                         d->cfg.account_id, c->function, c->qualifier);
    json_t *o = json_pack("{s:f, s:s}", "LastModified", c->last_modified, "FunctionArn", arn);
    if (c->max_retries >= 0)
        json_object_set_new(o, "MaximumRetryAttempts", json_integer(c->max_retries));
    if (c->max_age_s >= 0)
        json_object_set_new(o, "MaximumEventAgeInSeconds", json_integer(c->max_age_s));
    /* Lambda answers both members, empty when unset */
    json_t *ok = json_object(), *ko = json_object();
    if (c->on_success)
        json_object_set_new(ok, "Destination", json_string(c->on_success));
    if (c->on_failure)
        json_object_set_new(ko, "Destination", json_string(c->on_failure));
    json_object_set_new(o, "DestinationConfig",
                        json_pack("{s:o, s:o}", "OnSuccess", ok, "OnFailure", ko));
    return o;
}

/* The stored record: the same JSON plus the key. */
static char *config_record(struct nb_daemon *d, const struct nb_eic *c)
{
    json_t *o = config_json(d, c);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        BUG("json_dumps failed");
    return s;
}

static const char *dest_of(json_t *dc, const char *which)
{
    json_t *d = json_object_get(json_object_get(dc, which), "Destination");
    return json_is_string(d) && json_string_length(d) ? json_string_value(d) : NULL;
}

static struct nb_eic *config_from_record(const char *function, const char *qualifier,
                                         const char *doc)
{
    json_t *o = json_loads(doc, 0, NULL);
    if (!o)
        return NULL;
    struct nb_eic *c = xcalloc(1, sizeof(*c));
    c->function = xstrdup(function);
    c->qualifier = xstrdup(qualifier);
    json_t *v = json_object_get(o, "MaximumRetryAttempts");
    c->max_retries = json_is_integer(v) ? (int)json_integer_value(v) : -1;
    v = json_object_get(o, "MaximumEventAgeInSeconds");
    c->max_age_s = json_is_integer(v) ? (int)json_integer_value(v) : -1;
    c->last_modified = json_number_value(json_object_get(o, "LastModified"));
    json_t *dc = json_object_get(o, "DestinationConfig");
    const char *s = dest_of(dc, "OnSuccess"), *f = dest_of(dc, "OnFailure");
    c->on_success = s ? xstrdup(s) : NULL;
    c->on_failure = f ? xstrdup(f) : NULL;
    json_decref(o);
    return c;
}

static int load_one(void *data, const char *function, const char *qualifier, const char *doc)
{
    struct nb_daemon *d = data;
    if (!registry_find(d, function))
        return 0; /* its function was deleted (a crash between the two deletes) */
    struct nb_eic *c = config_from_record(function, qualifier, doc);
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

/* ---- validation -------------------------------------------------------------------------- */

int async_destination_parse(struct nb_daemon *d, const char *arn, char **name, char **qualifier,
                            struct nb_err *err)
{
    _cleanup_free_ char *n = NULL, *q = NULL, *region = NULL, *account = NULL;
    struct nb_err perr = {0};
    /* Hook: "arn:aws:sqs:", "arn:aws:sns:", "arn:aws:events:" and "arn:aws:s3:" destinations
     * land here once those services exist; until then they are invalid like any other. */
    if (strncmp(arn, "arn:aws:lambda:", 15) ||
        function_parse_ref_arn(arn, &n, &q, &region, &account, &perr) < 0 || !region || !account ||
        strcmp(region, d->cfg.region) || strcmp(account, d->cfg.account_id))
        return err_set(err, EINVAL,
                       "The destination ARN %s is invalid. (nimbus delivers destination records "
                       "to Lambda functions of region %s, account %s only)",
                       arn, d->cfg.region, d->cfg.account_id);
    *name = steal_ptr(n);
    *qualifier = steal_ptr(q);
    return 0;
}

static bool validation_error(struct nb_http_req *req, json_t *v, const char *member, long long min,
                             long long max)
{
    if (!v)
        return false;
    if (!json_is_integer(v)) {
        api_error(req, 400, "InvalidRequestContentException",
                  "Could not parse request body into json: %s must be an integer", member);
        return true;
    }
    long long n = json_integer_value(v);
    if (n < min || n > max) {
        api_error(req, 400, "ValidationException",
                  "1 validation error detected: Value '%lld' at '%c%s' failed to satisfy "
                  "constraint: Member must have value %s than or equal to %lld",
                  n, member[0] + ('a' - 'A'), member + 1, n < min ? "greater" : "less",
                  n < min ? min : max);
        return true;
    }
    return false;
}

/* Checks one destination member; false with the reply sent. */
static bool check_destination(struct nb_daemon *d, struct nb_http_req *req, json_t *dc,
                              const char *which)
{
    json_t *m = json_object_get(dc, which);
    if (!m)
        return true;
    json_t *dst = json_object_get(m, "Destination");
    if (!json_is_object(m) || (dst && !json_is_string(dst))) {
        api_error(req, 400, "InvalidRequestContentException",
                  "Could not parse request body into json: DestinationConfig.%s", which);
        return false;
    }
    if (!dst || !json_string_length(dst))
        return true;
    const char *arn = json_string_value(dst);
    if (strlen(arn) > 350) {
        api_error(req, 400, "ValidationException",
                  "1 validation error detected: Value at 'destinationConfig.%c%s.destination' "
                  "failed to satisfy constraint: Member must have length less than or equal to "
                  "350",
                  which[0] + ('a' - 'A'), which + 1);
        return false;
    }
    _cleanup_free_ char *name = NULL, *q = NULL;
    struct nb_err err = {0};
    if (async_destination_parse(d, arn, &name, &q, &err) < 0) {
        api_error_from(req, &err);
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

static void job_start(struct nb_daemon *d);

static void job_work(uv_work_t *w)
{
    struct nb_eic_job *j = w->data;
    if (j->op == EIC_DELETE)
        j->rc = store_eic_delete(j->d->store, j->function, j->qualifier, &j->err);
    else
        j->rc = store_eic_put(j->d->store, j->function, j->qualifier, j->doc, &j->err);
}

static void job_done(uv_work_t *w, int status)
{
    struct nb_eic_job *j = w->data;
    struct nb_daemon *d = j->d;
    struct nb_eic_table *t = table(d);
    t->queue_head = j->next;
    if (!t->queue_head)
        t->queue_tail = NULL;
    if (status < 0 && j->rc == 0)
        j->rc = err_set(&j->err, EIO, "work cancelled: %s", uv_strerror(status));
    if (j->rc == -ENOENT) {
        not_found(d, j->req, j->function, j->qualifier);
    } else if (j->rc < 0) {
        log_err("event invoke config write failed function=%s err=\"%s\"", j->function, j->err.msg);
        api_error(j->req, 500, "ServiceException", "%s", j->err.msg);
    } else if (j->op == EIC_DELETE) {
        uninstall(d, j->function, j->qualifier);
        api_empty(j->req, 204);
    } else {
        json_t *o = config_json(d, j->cfg);
        install(d, steal_ptr(j->cfg));
        api_json(j->req, 200, o);
    }
    eic_free(j->cfg);
    free(j->function);
    free(j->qualifier);
    free(j->doc);
    free(j);
    job_start(d);
}

static void job_start(struct nb_daemon *d)
{
    struct nb_eic_job *j = table(d)->queue_head;
    if (!j)
        return;
    j->work.data = j;
    int rc = uv_queue_work(d->loop, &j->work, job_work, job_done);
    if (rc < 0) {
        j->rc = err_set(&j->err, EIO, "cannot queue work: %s", uv_strerror(rc));
        job_done(&j->work, 0);
    }
}

static void job_queue(struct nb_daemon *d, struct nb_eic_job *j)
{
    struct nb_eic_table *t = table(d);
    bool idle = !t->queue_head;
    if (t->queue_tail)
        t->queue_tail->next = j;
    else
        t->queue_head = j;
    t->queue_tail = j;
    if (idle)
        job_start(d);
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
    json_t *retries = json_object_get(body, "MaximumRetryAttempts");
    json_t *age = json_object_get(body, "MaximumEventAgeInSeconds");
    json_t *dc = json_object_get(body, "DestinationConfig");
    if (validation_error(req, retries, "MaximumRetryAttempts", 0, 2) ||
        validation_error(req, age, "MaximumEventAgeInSeconds", 60, 21600))
        goto out;
    if (dc && !json_is_object(dc)) {
        api_error(req, 400, "InvalidRequestContentException",
                  "Could not parse request body into json: DestinationConfig");
        goto out;
    }
    if (!check_destination(d, req, dc, "OnSuccess") || !check_destination(d, req, dc, "OnFailure"))
        goto out;
    const struct nb_eic *cur = async_config_find(d, name, qualifier);
    if (update && !cur) {
        not_found(d, req, name, qualifier);
        goto out;
    }
    struct nb_eic *c = xcalloc(1, sizeof(*c));
    c->function = xstrdup(name);
    c->qualifier = xstrdup(qualifier);
    c->max_retries = retries ? (int)json_integer_value(retries) : -1;
    c->max_age_s = age ? (int)json_integer_value(age) : -1;
    const char *s = dest_of(dc, "OnSuccess"), *f = dest_of(dc, "OnFailure");
    c->on_success = s ? xstrdup(s) : NULL;
    c->on_failure = f ? xstrdup(f) : NULL;
    if (update) {
        /* fields the request does not name keep their value */
        if (!retries)
            c->max_retries = cur->max_retries;
        if (!age)
            c->max_age_s = cur->max_age_s;
        if (!json_object_get(dc, "OnSuccess") && cur->on_success)
            c->on_success = xstrdup(cur->on_success);
        if (!json_object_get(dc, "OnFailure") && cur->on_failure)
            c->on_failure = xstrdup(cur->on_failure);
    }
    c->last_modified = (double)now_ms() / 1000.0;
    struct nb_eic_job *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->req = req;
    j->op = update ? EIC_UPDATE : EIC_PUT;
    j->function = steal_ptr(name);
    j->qualifier = steal_ptr(qualifier);
    j->doc = config_record(d, c);
    j->cfg = c;
    job_queue(d, j);
out:
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
