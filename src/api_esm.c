/*
 * api_esm.c - the event source mapping API (Create/Get/Update/Delete/ListEventSourceMappings,
 * /2015-03-31/event-source-mappings/[{UUID}]) for SQS queues of this server.
 *
 * Validation as Lambda (LAMBDA.md §3.7, botocore's model): BatchSize 1..10000 (default 10; FIFO at
 * most 10; above 10 needs MaximumBatchingWindowInSeconds >= 1), the window 0..300,
 * FunctionResponseTypes only ReportBatchItemFailures, ScalingConfig.MaximumConcurrency 2..1000, the
 * queue and the function (with its qualifier) must exist, one mapping per (queue, function).
 * Writes go to the store through the daemon's serial store-write queue (serial_work.h: on a worker
 * thread, one at a time in arrival order; a write that fails or could not be queued is answered
 * 500 ServiceException); memory changes when the write committed, so a reply never announces what
 * disk does not hold. Replies carry the transient states (Creating, Enabling, Disabling, Updating,
 * Deleting); Get/List show the steady ones.
 * Loop thread only.
 */
#include <errno.h>
#include <math.h>

#include "api.h"
#include "daemon.h"
#include "esm.h"
#include "function.h"
#include "log.h"
#include "sqs.h"
#include "store.h"

#define PATH "/2015-03-31/event-source-mappings/"
#define LIST_DEFAULT 100

enum job_op { JOB_CREATE, JOB_UPDATE, JOB_DELETE };

struct nb_esm_job {
    struct nb_serial_job sj;
    struct nb_daemon *d;
    struct nb_http_req *req;
    enum job_op op;
    struct nb_esm *m;   /* CREATE/UPDATE: the new mapping (owned until installed) */
    struct nb_esm *cur; /* UPDATE/DELETE: the one in the table */
    char *old_function; /* UPDATE: the record's function before (moved when it changed) */
    char *doc;
    const char *state; /* the reply's State */
    int rc;
    struct nb_err err;
};

static struct nb_esm_table *table(struct nb_daemon *d)
{
    if (!d->esm) {
        d->esm = xcalloc(1, sizeof(*d->esm));
        d->esm->d = d;
    }
    return d->esm;
}

static void job_work(void *data)
{
    struct nb_esm_job *j = data;
    struct nb_store *st = j->d->store;
    if (j->op == JOB_DELETE) {
        j->rc = store_object_delete(st, "esm", j->cur->function, j->cur->uuid, &j->err);
        return;
    }
    j->rc = store_object_put(st, "esm", j->m->function, j->m->uuid, j->doc, &j->err);
    if (j->rc == 0 && j->old_function && strcmp(j->old_function, j->m->function)) {
        struct nb_err derr = {0};
        if (store_object_delete(st, "esm", j->old_function, j->m->uuid, &derr) < 0 &&
            derr.code != ENOENT)
            log_warn("cannot delete moved event source mapping uuid=%s err=\"%s\"", j->m->uuid,
                     derr.msg);
    }
}

/* Copies the settings of src into the live mapping dst (its poller state stays). */
static void apply(struct nb_esm *dst, struct nb_esm *src)
{
    free(dst->function);
    dst->function = steal_ptr(src->function);
    free(dst->qualifier);
    dst->qualifier = steal_ptr(src->qualifier);
    dst->batch_size = src->batch_size;
    dst->window_s = src->window_s;
    dst->max_conc = src->max_conc;
    dst->report_failures = src->report_failures;
    dst->enabled = src->enabled;
    dst->last_modified = src->last_modified;
}

static void job_free(struct nb_esm_job *j)
{
    esm_release(j->m);
    free(j->old_function);
    free(j->doc);
    free(j);
}

/* Answers the request and frees the job, on every path. */
static void job_done(void *data, int status)
{
    struct nb_esm_job *j = data;
    struct nb_daemon *d = j->d;
    j->rc = api_work_result(status, j->rc, &j->err);
    if (j->rc == -ENOENT && j->op == JOB_DELETE) {
        /* the function went (and its mappings with it): gone from memory too */
        json_t *o = esm_json(d, j->cur, "Deleting");
        esm_remove(d, j->cur);
        api_json(j->req, 202, o);
    } else if (j->rc < 0) {
        log_err("event source mapping write failed err=\"%s\"", j->err.msg);
        api_error(j->req, 500, "ServiceException", "%s", j->err.msg);
    } else if (j->op == JOB_DELETE) {
        json_t *o = esm_json(d, j->cur, "Deleting");
        esm_remove(d, j->cur);
        api_json(j->req, 202, o);
    } else if (j->op == JOB_CREATE) {
        json_t *o = esm_json(d, j->m, "Creating");
        esm_install(d, steal_ptr(j->m));
        api_json(j->req, 202, o);
    } else {
        apply(j->cur, j->m);
        json_t *o = esm_json(d, j->cur, j->state);
        esm_changed(j->cur);
        api_json(j->req, 202, o);
    }
    job_free(j);
}

/* ---- validation ------------------------------------------------------------------------- */

static bool get_int(struct nb_http_req *req, json_t *body, const char *member, long long min,
                    long long max, int *out)
{
    json_t *v = json_object_get(body, member);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v)) {
        api_error(req, 400, "InvalidRequestContentException",
                  "Could not parse request body into json: %s must be an integer", member);
        return false;
    }
    long long n = json_integer_value(v);
    if (n < min || n > max) {
        api_error(req, 400, "ValidationException",
                  "1 validation error detected: Value '%lld' at '%c%s' failed to satisfy "
                  "constraint: Member must have value %s than or equal to %lld",
                  n, member[0] + ('a' - 'A'), member + 1, n < min ? "greater" : "less",
                  n < min ? min : max);
        return false;
    }
    *out = (int)n;
    return true;
}

/* Applies body's settings to m (a new mapping or a copy of the current one); false with the reply
 * sent. */
static bool parse_settings(struct nb_daemon *d, struct nb_http_req *req, json_t *body,
                           struct nb_esm *m)
{
    if (!get_int(req, body, "BatchSize", 1, 10000, &m->batch_size) ||
        !get_int(req, body, "MaximumBatchingWindowInSeconds", 0, 300, &m->window_s))
        return false;
    json_t *en = json_object_get(body, "Enabled");
    if (en && !json_is_null(en)) {
        if (!json_is_boolean(en)) {
            api_error(req, 400, "InvalidRequestContentException",
                      "Could not parse request body into json: Enabled must be a boolean");
            return false;
        }
        m->enabled = json_is_true(en);
    }
    json_t *frt = json_object_get(body, "FunctionResponseTypes");
    if (frt && !json_is_null(frt)) {
        if (!json_is_array(frt)) {
            api_error(req, 400, "InvalidRequestContentException",
                      "Could not parse request body into json: FunctionResponseTypes must be a "
                      "list");
            return false;
        }
        m->report_failures = false;
        size_t i;
        json_t *v;
        json_array_foreach (frt, i, v) {
            if (!json_is_string(v) || strcmp(json_string_value(v), "ReportBatchItemFailures")) {
                api_error(req, 400, "ValidationException",
                          "1 validation error detected: Value at 'functionResponseTypes' failed "
                          "to satisfy constraint: Member must satisfy constraint: [Member must "
                          "satisfy enum value set: [ReportBatchItemFailures]]");
                return false;
            }
            m->report_failures = true;
        }
    }
    json_t *sc = json_object_get(body, "ScalingConfig");
    if (sc && !json_is_null(sc)) {
        if (!json_is_object(sc)) {
            api_error(req, 400, "InvalidRequestContentException",
                      "Could not parse request body into json: ScalingConfig must be an object");
            return false;
        }
        m->max_conc = 0;
        if (!get_int(req, sc, "MaximumConcurrency", 2, 1000, &m->max_conc))
            return false;
    }
    if (m->fifo && m->batch_size > 10) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Batch size must be between 1 and 10 for FIFO queues (got %d)", m->batch_size);
        return false;
    }
    if (m->batch_size > 10 && m->window_s < 1) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
                  "greater than 10");
        return false;
    }
    (void)d;
    return true;
}

/* Sets m's function from FunctionName; false with the reply sent. */
static bool parse_function(struct nb_daemon *d, struct nb_http_req *req, json_t *v,
                           struct nb_esm *m)
{
    const char *ref = json_string_value(v);
    if (!ref) {
        api_error(req, 400, "InvalidParameterValueException", "FunctionName is required");
        return false;
    }
    _cleanup_free_ char *name = NULL, *q = NULL;
    struct nb_err err = {0};
    if (function_parse_ref(ref, &name, &q, &err) < 0) {
        api_error_from(req, &err);
        return false;
    }
    struct nb_fn *fn = registry_find(d, name);
    struct nb_err rerr = {0};
    if (!fn || !registry_resolve(d, fn, q, &rerr)) {
        api_error(req, 404, "ResourceNotFoundException", "Function does not exist");
        return false;
    }
    free(m->function);
    free(m->qualifier);
    m->function = steal_ptr(name);
    m->qualifier = steal_ptr(q);
    return true;
}

static bool same_target(const struct nb_esm *a, const struct nb_esm *b)
{
    return !strcmp(a->queue_arn, b->queue_arn) && !strcmp(a->function, b->function) &&
           !strcmp(a->qualifier ? a->qualifier : "", b->qualifier ? b->qualifier : "");
}

static bool conflict(struct nb_daemon *d, struct nb_http_req *req, const struct nb_esm *m)
{
    for (struct nb_esm *o = table(d)->head; o; o = o->next)
        if (o != m && strcmp(o->uuid, m->uuid) && same_target(o, m)) {
            api_error(req, 409, "ResourceConflictException",
                      "An event source mapping with SQS arn (\" %s \") and function (\" %s \") "
                      "already exists. Please update or delete the existing mapping with UUID %s",
                      m->queue_arn, m->function, o->uuid);
            return true;
        }
    return false;
}

static double now_s(void)
{
    return floor((double)now_ms() / 10.0) / 100.0;
}

static void queue_write(struct nb_daemon *d, struct nb_http_req *req, enum job_op op,
                        struct nb_esm *m, struct nb_esm *cur, const char *state)
{
    struct nb_esm_job *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->req = req;
    j->op = op;
    j->cur = cur;
    j->state = state;
    if (m) {
        json_t *rec = esm_record(m);
        j->doc = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        if (!j->doc)
            BUG("json_dumps failed");
        j->m = m;
    }
    if (op == JOB_UPDATE)
        j->old_function = xstrdup(cur->function);
    serial_work_submit(&d->store_writes, &j->sj, j, job_work, job_done);
}

/* ---- handlers --------------------------------------------------------------------------- */

static void h_create(struct nb_http_req *req, const struct nb_route_match *m_, void *data)
{
    struct nb_daemon *d = data;
    (void)m_;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    struct nb_esm *m = xcalloc(1, sizeof(*m));
    uuid_v4(m->uuid);
    m->batch_size = NB_ESM_DEFAULT_BATCH;
    m->enabled = true;
    snprintf(m->last_result, sizeof(m->last_result), "No records processed");
    const char *arn = json_string_value(json_object_get(body, "EventSourceArn"));
    bool fifo = false;
    if (!arn) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Unrecognized event source, must be kinesis, dynamodb stream, sqs, msk or mq");
        goto fail;
    }
    if (strncmp(arn, "arn:aws:sqs:", 12)) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Unrecognized event source, must be kinesis, dynamodb stream, sqs, msk or mq "
                  "(nimbus maps SQS queues of this server only)");
        goto fail;
    }
    if (sqs_queue_info(d->sqs, arn, &fifo) < 0) {
        api_error(req, 400, "InvalidParameterValueException",
                  "Error occurred while ReceiveMessage. SQS Error Code: "
                  "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified "
                  "queue does not exist for this wsdl version.");
        goto fail;
    }
    m->queue_arn = xstrdup(arn);
    m->fifo = fifo;
    if (!parse_function(d, req, json_object_get(body, "FunctionName"), m) ||
        !parse_settings(d, req, body, m) || conflict(d, req, m))
        goto fail;
    m->last_modified = now_s();
    json_decref(body);
    queue_write(d, req, JOB_CREATE, m, NULL, "Creating");
    return;
fail:
    esm_release(m);
    json_decref(body);
}

static struct nb_esm *lookup(struct nb_daemon *d, struct nb_http_req *req,
                             const struct nb_route_match *rm)
{
    struct nb_esm *m = esm_find(d, route_param(rm, "UUID"));
    if (!m)
        api_error(req, 404, "ResourceNotFoundException",
                  "The resource you requested does not exist.");
    return m;
}

static void h_get(struct nb_http_req *req, const struct nb_route_match *rm, void *data)
{
    struct nb_daemon *d = data;
    struct nb_esm *m = lookup(d, req, rm);
    if (m)
        api_json(req, 200, esm_json(d, m, NULL));
}

static void h_update(struct nb_http_req *req, const struct nb_route_match *rm, void *data)
{
    struct nb_daemon *d = data;
    struct nb_esm *cur = lookup(d, req, rm);
    if (!cur)
        return;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    struct nb_esm *m = xcalloc(1, sizeof(*m));
    *m = (struct nb_esm){0};
    memcpy(m->uuid, cur->uuid, sizeof(m->uuid));
    m->queue_arn = xstrdup(cur->queue_arn);
    m->function = xstrdup(cur->function);
    m->qualifier = cur->qualifier ? xstrdup(cur->qualifier) : NULL;
    m->batch_size = cur->batch_size;
    m->window_s = cur->window_s;
    m->max_conc = cur->max_conc;
    m->report_failures = cur->report_failures;
    m->enabled = cur->enabled;
    m->fifo = cur->fifo;
    json_t *fnv = json_object_get(body, "FunctionName");
    if ((fnv && !json_is_null(fnv) && !parse_function(d, req, fnv, m)) ||
        !parse_settings(d, req, body, m) || conflict(d, req, m)) {
        esm_release(m);
        json_decref(body);
        return;
    }
    m->last_modified = now_s();
    const char *state = m->enabled == cur->enabled ? "Updating"
                        : m->enabled               ? "Enabling"
                                                   : "Disabling";
    json_decref(body);
    queue_write(d, req, JOB_UPDATE, m, cur, state);
}

static void h_delete(struct nb_http_req *req, const struct nb_route_match *rm, void *data)
{
    struct nb_daemon *d = data;
    struct nb_esm *cur = lookup(d, req, rm);
    if (cur)
        queue_write(d, req, JOB_DELETE, NULL, cur, "Deleting");
}

static void h_list(struct nb_http_req *req, const struct nb_route_match *rm, void *data)
{
    struct nb_daemon *d = data;
    (void)rm;
    const char *arn = http_req_query(req, "EventSourceArn");
    const char *fref = http_req_query(req, "FunctionName");
    const char *marker = http_req_query(req, "Marker");
    const char *max_s = http_req_query(req, "MaxItems");
    int64_t max = LIST_DEFAULT, skip = 0;
    if (max_s && parse_i64(max_s, 1, 10000, &max) < 0) {
        api_error(req, 400, "InvalidParameterValueException", "MaxItems must be 1..10000");
        return;
    }
    if (marker && *marker && parse_i64(marker, 0, INT64_MAX, &skip) < 0) {
        api_error(req, 400, "InvalidParameterValueException", "Invalid Marker");
        return;
    }
    _cleanup_free_ char *fname = NULL, *fq = NULL;
    if (fref && *fref) {
        struct nb_err err = {0};
        if (function_parse_ref(fref, &fname, &fq, &err) < 0) {
            api_error_from(req, &err);
            return;
        }
    }
    json_t *list = json_array();
    int64_t idx = 0;
    bool more = false;
    for (struct nb_esm *m = table(d)->head; m; m = m->next) {
        if (arn && *arn && strcmp(arn, m->queue_arn))
            continue;
        if (fname &&
            (strcmp(fname, m->function) || (fq && strcmp(fq, m->qualifier ? m->qualifier : ""))))
            continue;
        if (idx++ < skip)
            continue;
        if ((int64_t)json_array_size(list) == max) {
            more = true;
            break;
        }
        json_array_append_new(list, esm_json(d, m, NULL));
    }
    json_t *o = json_pack("{s:o}", "EventSourceMappings", list);
    if (more) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)(skip + max));
        json_object_set_new(o, "NextMarker", json_string(buf));
    }
    api_json(req, 200, o);
}

void api_esm_routes(struct nb_router *r, struct nb_daemon *d)
{
    router_add(r, "POST", PATH, "lambda:CreateEventSourceMapping", h_create, d);
    router_add(r, "POST", "/2015-03-31/event-source-mappings", "lambda:CreateEventSourceMapping",
               h_create, d);
    router_add(r, "GET", PATH, "lambda:ListEventSourceMappings", h_list, d);
    router_add(r, "GET", "/2015-03-31/event-source-mappings", "lambda:ListEventSourceMappings",
               h_list, d);
    router_add(r, "GET", PATH "{UUID}", "lambda:GetEventSourceMapping", h_get, d);
    router_add(r, "PUT", PATH "{UUID}", "lambda:UpdateEventSourceMapping", h_update, d);
    router_add(r, "DELETE", PATH "{UUID}", "lambda:DeleteEventSourceMapping", h_delete, d);
}
