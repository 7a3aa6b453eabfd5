/*
 * esm.c - event source mapping pollers: the in-memory table of mappings, the queue watches, and
 * one mapping's batches from receive to delete (the API is api_esm.c).
 *
 * One watch per mapped queue (sqs_watch allows one): its callback pumps every enabled mapping of
 * that queue. pump() takes messages (sqs_receive_internal; they turn invisible for the queue's
 * visibility timeout) into the mapping's pending batch; a full batch -- or the batching window's
 * end -- is admitted (pool_admit; a refusal is a throttle: the batch waits, the timer backs off)
 * and invoked with no HTTP client. When the invocation ends, the messages it succeeded for are
 * deleted (sqs_delete_internal: durable before the callback); the others stay and reappear after
 * the visibility timeout (the queue's RedrivePolicy moves them to its DLQ). The batch counts as
 * in flight until its deletes are durable, so a FIFO group stays locked by the queue service until
 * then and order is kept. pump loops while messages are visible and fewer than MaximumConcurrency
 * batches run: the pollers scale with the queue depth; an empty queue leaves nothing armed.
 */
#include <errno.h>

#include "daemon.h"
#include "esm.h"
#include "instance.h"
#include "log.h"
#include "logs.h"
#include "metrics.h"
#include "sqs.h"
#include "store.h"
#include "util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct batch {
    struct nb_esm *m;
    json_t *msgs; /* the messages (ReceiveMessage shape) */
    int deletes;  /* deletes not yet durable */
};

static struct nb_esm_table *table(struct nb_daemon *d)
{
    if (!d->esm) {
        d->esm = xcalloc(1, sizeof(*d->esm));
        d->esm->d = d;
    }
    return d->esm;
}

void esm_release(struct nb_esm *m)
{
    if (!m)
        return;
    free(m->queue_arn);
    free(m->function);
    free(m->qualifier);
    json_decref(m->pending);
    free(m);
}

struct nb_esm *esm_find(struct nb_daemon *d, const char *uuid)
{
    for (struct nb_esm *m = table(d)->head; m; m = m->next)
        if (!strcmp(m->uuid, uuid))
            return m;
    return NULL;
}

/* ---- records and JSON ------------------------------------------------------------------- */

json_t *esm_record(const struct nb_esm *m)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:b, s:b, s:f}", "UUID", m->uuid,
                  "EventSourceArn", m->queue_arn, "FunctionName", m->function, "BatchSize",
                  m->batch_size, "MaximumBatchingWindowInSeconds", m->window_s,
                  "MaximumConcurrency", m->max_conc, "ReportBatchItemFailures", m->report_failures,
                  "Enabled", m->enabled, "LastModified", m->last_modified);
    if (m->qualifier)
        json_object_set_new(o, "Qualifier", json_string(m->qualifier));
    return o;
}

struct nb_esm *esm_from_record(const char *function, const char *uuid, const char *doc)
{
    json_t *o = json_loads(doc, 0, NULL);
    const char *arn = json_string_value(json_object_get(o, "EventSourceArn"));
    if (!arn || strlen(uuid) > 36) {
        json_decref(o);
        return NULL;
    }
    struct nb_esm *m = xcalloc(1, sizeof(*m));
    snprintf(m->uuid, sizeof(m->uuid), "%s", uuid);
    m->queue_arn = xstrdup(arn);
    m->function = xstrdup(function);
    const char *q = json_string_value(json_object_get(o, "Qualifier"));
    m->qualifier = q ? xstrdup(q) : NULL;
    m->batch_size = (int)json_integer_value(json_object_get(o, "BatchSize"));
    if (m->batch_size < 1)
        m->batch_size = NB_ESM_DEFAULT_BATCH;
    m->window_s = (int)json_integer_value(json_object_get(o, "MaximumBatchingWindowInSeconds"));
    m->max_conc = (int)json_integer_value(json_object_get(o, "MaximumConcurrency"));
    m->report_failures = json_is_true(json_object_get(o, "ReportBatchItemFailures"));
    m->enabled = json_is_true(json_object_get(o, "Enabled"));
    m->last_modified = json_number_value(json_object_get(o, "LastModified"));
    snprintf(m->last_result, sizeof(m->last_result), "No records processed");
    json_decref(o);
    return m;
}

json_t *esm_json(struct nb_daemon *d, const struct nb_esm *m, const char *state)
{
    char *farn = m->qualifier ? xasprintf("arn:aws:lambda:%s:%s:function:%s:%s", d->cfg.region,
                                          d->cfg.account_id, m->function, m->qualifier)
                              : xasprintf("arn:aws:lambda:%s:%s:function:%s", d->cfg.region,
                                          d->cfg.account_id, m->function);
    json_t *o = json_pack("{s:s, s:i, s:i, s:s, s:s, s:f, s:s, s:s, s:s, s:[]}", "UUID", m->uuid,
                          "BatchSize", m->batch_size, "MaximumBatchingWindowInSeconds", m->window_s,
                          "EventSourceArn", m->queue_arn, "FunctionArn", farn, "LastModified",
                          m->last_modified, "LastProcessingResult", m->last_result, "State",
                          state        ? state
                          : m->enabled ? "Enabled"
                                       : "Disabled",
                          "StateTransitionReason", "USER_INITIATED", "FunctionResponseTypes");
    free(farn);
    if (m->report_failures)
        json_array_append_new(json_object_get(o, "FunctionResponseTypes"),
                              json_string("ReportBatchItemFailures"));
    if (m->max_conc)
        json_object_set_new(o, "ScalingConfig",
                            json_pack("{s:i}", "MaximumConcurrency", m->max_conc));
    return o;
}

/* ---- the SQS event ---------------------------------------------------------------------- */

static json_t *record_attrs(json_t *attrs)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach (attrs, k, v) {
        json_t *a = json_pack("{s:[], s:[], s:O}", "stringListValues", "binaryListValues",
                              "dataType", json_object_get(v, "DataType"));
        json_t *sv = json_object_get(v, "StringValue"), *bv = json_object_get(v, "BinaryValue");
        if (sv)
            json_object_set(a, "stringValue", sv);
        if (bv)
            json_object_set(a, "binaryValue", bv);
        json_object_set_new(out, k, a);
    }
    return out;
}

static char *event_json(struct nb_daemon *d, const struct nb_esm *m, json_t *msgs, size_t *len)
{
    json_t *recs = json_array();
    size_t i;
    json_t *msg;
    json_array_foreach (msgs, i, msg) {
        json_t *attrs = json_object_get(msg, "Attributes");
        json_t *r =
            json_pack("{s:O, s:O, s:O, s:o, s:o, s:O, s:s, s:s, s:s}", "messageId",
                      json_object_get(msg, "MessageId"), "receiptHandle",
                      json_object_get(msg, "ReceiptHandle"), "body", json_object_get(msg, "Body"),
                      "attributes", attrs ? json_deep_copy(attrs) : json_object(),
                      "messageAttributes", record_attrs(json_object_get(msg, "MessageAttributes")),
                      "md5OfBody", json_object_get(msg, "MD5OfBody"), "eventSource", "aws:sqs",
                      "eventSourceARN", m->queue_arn, "awsRegion", d->cfg.region);
        json_t *md5a = json_object_get(msg, "MD5OfMessageAttributes");
        if (md5a)
            json_object_set(r, "md5OfMessageAttributes", md5a);
        json_array_append_new(recs, r);
    }
    json_t *ev = json_pack("{s:o}", "Records", recs);
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (!s)
        BUG("json_dumps failed");
    *len = strlen(s);
    return s;
}

bool esm_batch_failures(const char *body, size_t len, json_t *msgs, json_t **failed)
{
    *failed = json_array();
    if (len == 0)
        return true;
    json_t *r = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (!r)
        return false;
    bool ok = true;
    if (json_is_null(r)) {
        /* success */
    } else if (!json_is_object(r)) {
        ok = false;
    } else {
        json_t *list = json_object_get(r, "batchItemFailures");
        size_t i, j;
        json_t *it, *msg;
        if (list && !json_is_null(list) && !json_is_array(list))
            ok = false;
        json_array_foreach (list, i, it) {
            const char *id = json_string_value(json_object_get(it, "itemIdentifier"));
            bool known = false;
            if (id && *id)
                json_array_foreach (msgs, j, msg)
                    if (!strcmp(id, json_string_value(json_object_get(msg, "MessageId"))))
                        known = true;
            if (!known) {
                ok = false;
                break;
            }
            json_array_append_new(*failed, json_string(id));
        }
    }
    json_decref(r);
    return ok;
}

/* ---- batches ---------------------------------------------------------------------------- */

static void pump(struct nb_esm *m);
static void maybe_free(struct nb_esm *m);

static void batch_end(struct batch *b)
{
    struct nb_esm *m = b->m;
    json_decref(b->msgs);
    free(b);
    m->inflight--;
    if (m->deleted)
        maybe_free(m);
    else
        pump(m);
}

static void deleted_one(void *data, int status)
{
    struct batch *b = data;
    if (status == 0)
        b->m->t->n.deleted++;
    if (--b->deletes == 0)
        batch_end(b);
}

static bool listed(json_t *ids, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach (ids, i, v)
        if (!strcmp(json_string_value(v), id))
            return true;
    return false;
}

static void batch_done(struct nb_invocation *inv, const struct nb_inv_result *res)
{
    struct batch *b = inv->done_data;
    struct nb_esm *m = b->m;
    struct nb_esm_table *t = m->t;
    struct nb_daemon *d = t->d;
    bool ok = res->status == 200 && res->outcome == NB_OK;
    json_t *failed = NULL;
    if (ok && m->report_failures && !esm_batch_failures(res->body, res->len, b->msgs, &failed)) {
        ok = false;
        log_warn("esm batch response malformed uuid=%s function=%s: whole batch failed", m->uuid,
                 m->function);
    }
    if (!ok) {
        t->n.batch_failures++;
        t->n.record_failures += json_array_size(b->msgs);
        snprintf(m->last_result, sizeof(m->last_result), "PROBLEM: Function call failed");
        json_decref(failed);
        batch_end(b);
        return;
    }
    snprintf(m->last_result, sizeof(m->last_result), "OK");
    /* The function's log lines of this batch reach the file (page cache) before any of its
     * messages is deleted: a crash never leaves a deleted message without its log. */
    if (d->logs)
        logs_flush(d->logs);
    b->deletes = 1; /* held until every delete is queued */
    size_t i;
    json_t *msg;
    json_array_foreach (b->msgs, i, msg) {
        const char *id = json_string_value(json_object_get(msg, "MessageId"));
        if (failed && listed(failed, id)) {
            t->n.record_failures++;
            continue;
        }
        b->deletes++;
        if (!d->sqs || sqs_delete_internal(d->sqs, m->queue_arn,
                                           json_string_value(json_object_get(msg, "ReceiptHandle")),
                                           deleted_one, b) < 0)
            b->deletes--; /* the queue or the message is gone: nothing to delete */
    }
    json_decref(failed);
    deleted_one(b, 1);
}

/* Invokes the pending batch (admitted by the caller). */
static void batch_start(struct nb_esm *m, struct nb_fn *fn, struct nb_function *cfg)
{
    struct nb_esm_table *t = m->t;
    struct batch *b = xcalloc(1, sizeof(*b));
    b->m = m;
    b->msgs = steal_ptr(m->pending);
    m->window_due = false;
    if (m->timer_window) {
        uv_timer_stop(&m->timer);
        m->timer_window = false;
    }
    size_t len;
    char *payload = event_json(t->d, m, b->msgs, &len);
    t->n.batches++;
    t->n.records += json_array_size(b->msgs);
    m->inflight++;
    struct nb_invocation *inv = invoke_new(t->d, fn, cfg, NULL, payload, len, NULL);
    inv->on_done = batch_done;
    inv->done_data = b;
    invoke_start(inv);
}

static void on_timer(uv_timer_t *h)
{
    struct nb_esm *m = h->data;
    if (m->timer_window)
        m->window_due = true;
    m->timer_window = m->timer_backoff = false;
    pump(m);
}

static void arm(struct nb_esm *m, uint64_t ms)
{
    uv_timer_start(&m->timer, on_timer, ms, 0);
}

/* Tops the pending batch up from the queue; its size after. */
static size_t fill(struct nb_esm *m)
{
    struct nb_daemon *d = m->t->d;
    if (!m->pending)
        m->pending = json_array();
    while (json_array_size(m->pending) < (size_t)m->batch_size) {
        int want = m->batch_size - (int)json_array_size(m->pending);
        json_t *got = sqs_receive_internal(d->sqs, m->queue_arn, want > 10 ? 10 : want, -1);
        size_t n = json_array_size(got);
        json_array_extend(m->pending, got);
        json_decref(got);
        if (n == 0)
            break;
    }
    return json_array_size(m->pending);
}

static void pump(struct nb_esm *m)
{
    struct nb_esm_table *t = m->t;
    struct nb_daemon *d = t->d;
    if (t->stopping || d->draining || m->deleted || !m->enabled || m->timer_backoff || !d->sqs)
        return;
    int limit = m->max_conc ? m->max_conc : NB_ESM_MAX_CONCURRENCY;
    while (m->inflight < limit) {
        struct nb_fn *fn = registry_find(d, m->function);
        struct nb_err err = {0};
        struct nb_function *cfg = fn ? registry_resolve(d, fn, m->qualifier, &err) : NULL;
        if (!cfg) {
            snprintf(m->last_result, sizeof(m->last_result), "PROBLEM: Function not found");
            return; /* messages stay in the queue */
        }
        size_t n = fill(m);
        if (n == 0)
            return; /* empty: the watch calls again */
        if (n < (size_t)m->batch_size && m->window_s > 0 && !m->window_due) {
            if (!m->timer_window) {
                m->timer_window = true;
                arm(m, (uint64_t)m->window_s * 1000);
            }
            return;
        }
        if (pool_admit(d, fn, cfg)) {
            metrics_throttle(d, fn, cfg);
            t->n.throttles++;
            m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : BACKOFF_MIN_MS;
            if (m->backoff_ms > BACKOFF_MAX_MS)
                m->backoff_ms = BACKOFF_MAX_MS;
            if (m->timer_window)
                uv_timer_stop(&m->timer);
            m->timer_window = false;
            m->window_due = true; /* send what we have once admitted */
            m->timer_backoff = true;
            arm(m, (uint64_t)m->backoff_ms);
            return;
        }
        m->backoff_ms = 0;
        batch_start(m, fn, cfg);
    }
}

/* ---- the table -------------------------------------------------------------------------- */

static void on_queue(void *data, const char *queue_arn)
{
    struct nb_esm_table *t = data;
    for (struct nb_esm *m = t->head; m; m = m->next)
        if (!strcmp(m->queue_arn, queue_arn))
            pump(m);
}

static void watch_queue(struct nb_esm_table *t, const char *arn)
{
    bool used = false;
    for (struct nb_esm *m = t->head; m; m = m->next)
        if (!strcmp(m->queue_arn, arn))
            used = true;
    if (t->d->sqs)
        sqs_watch(t->d->sqs, arn, used ? on_queue : NULL, t);
}

static void on_closed(uv_handle_t *h)
{
    struct nb_esm *m = h->data;
    m->closed = true;
    maybe_free(m);
}

static void maybe_free(struct nb_esm *m)
{
    if (m->closed && m->inflight == 0)
        esm_release(m);
}

void esm_install(struct nb_daemon *d, struct nb_esm *m)
{
    struct nb_esm_table *t = table(d);
    m->t = t;
    uv_timer_init(d->loop, &m->timer);
    m->timer.data = m;
    struct nb_esm **p = &t->head;
    while (*p)
        p = &(*p)->next;
    *p = m;
    watch_queue(t, m->queue_arn);
    if (t->loading)
        arm(m, 0); /* start-up: poll once the loop runs */
    else
        pump(m);
}

void esm_remove(struct nb_daemon *d, struct nb_esm *m)
{
    struct nb_esm_table *t = table(d);
    for (struct nb_esm **p = &t->head; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    m->deleted = true;
    watch_queue(t, m->queue_arn);
    uv_close((uv_handle_t *)&m->timer, on_closed);
}

void esm_changed(struct nb_esm *m)
{
    if (!m->enabled && m->timer_window) {
        uv_timer_stop(&m->timer);
        m->timer_window = false;
    }
    if (!m->enabled) {
        /* held messages come back after their visibility timeout; their handles would be stale */
        json_decref(m->pending);
        m->pending = NULL;
        m->window_due = false;
    }
    watch_queue(m->t, m->queue_arn);
    pump(m);
}

static int load_one(void *data, const char *function, const char *key, const char *doc)
{
    struct nb_daemon *d = data;
    struct nb_esm *m = esm_from_record(function, key, doc);
    if (!m) {
        log_err("skipping unreadable event source mapping uuid=%s function=%s", key, function);
        return 0;
    }
    bool fifo = false;
    if (sqs_queue_info(d->sqs, m->queue_arn, &fifo) == 0)
        m->fifo = fifo;
    esm_install(d, m);
    return 0;
}

int esm_start(struct nb_daemon *d, struct nb_err *err)
{
    table(d)->loading = true;
    int rc = store_object_each(d->store, "esm", load_one, d, err);
    d->esm->loading = false;
    return rc < 0 ? err_prefix(err, "cannot load event source mappings") : 0;
}

void esm_stop(struct nb_daemon *d)
{
    if (!d->esm || d->esm->stopping)
        return;
    d->esm->stopping = true;
    for (struct nb_esm *m = d->esm->head; m; m = m->next)
        uv_close((uv_handle_t *)&m->timer, NULL);
}

void esm_free(struct nb_daemon *d)
{
    if (!d->esm)
        return;
    while (d->esm->head) {
        struct nb_esm *m = d->esm->head;
        d->esm->head = m->next;
        esm_release(m);
    }
    free(d->esm);
    d->esm = NULL;
}

void esm_metrics_render(struct nb_daemon *d, struct nb_buf *b)
{
    struct nb_esm_table *t = d->esm;
    if (!t)
        return;
    uint64_t n_maps = 0, inflight = 0;
    for (struct nb_esm *m = t->head; m; m = m->next) {
        n_maps++;
        inflight += (uint64_t)m->inflight;
    }
    metrics_gauge(b, "nimbus_esm_mappings", "Event source mappings.", (double)n_maps);
    metrics_gauge(b, "nimbus_esm_batches_inflight",
                  "Event source mapping batches invoked and not finished.", (double)inflight);
    metrics_counter(b, "nimbus_esm_batches_total",
                    "Batches of queue messages an event source mapping invoked a function with.",
                    t->n.batches);
    metrics_counter(b, "nimbus_esm_records_total", "Queue messages sent to functions in batches.",
                    t->n.records);
    metrics_counter(b, "nimbus_esm_records_deleted_total",
                    "Queue messages deleted (durably) after a successful invocation.",
                    t->n.deleted);
    metrics_counter(b, "nimbus_esm_batch_failures_total",
                    "Batches that failed as a whole (function error, timeout, malformed "
                    "batch response, platform error).",
                    t->n.batch_failures);
    metrics_counter(b, "nimbus_esm_record_failures_total",
                    "Queue messages left in the queue after their batch (retried later).",
                    t->n.record_failures);
    metrics_counter(b, "nimbus_esm_throttles_total",
                    "Batches refused by admission (the poller backs off).", t->n.throttles);
}
