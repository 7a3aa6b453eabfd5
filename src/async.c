/*
 * async.c - asynchronous (Event) invocations: the group-committed event journal, the dispatcher
 * and the outcome of each attempt (see async.h for the life of an event).
 *
 * Group commit: writes (insert, mark, unmark, delete, and schedule tick marks that carry no
 * event) are appended to `next`; when no commit is in flight, `next` becomes `inflight` and is
 * written by one store_events_write (one transaction, one fsync) on a libuv worker thread. Writes
 * queued meanwhile wait for the following commit, so the commit rate is bounded by the disk and
 * the batch grows with the load. A batch that deletes events first flushes the function logs, so
 * no finished event's log lines can be lost with the daemon once its row is gone. Nothing of an
 * event a write borrows (strings, payload) changes or is freed before its commit is done: an
 * event being inserted is not dispatched, a deleted event's write carries only its id; a tick
 * mark owns copies of its strings.
 *
 * Dispatcher: ready events form a FIFO; events waiting for a retry sit on a timer heap
 * (async_sched.h) whose earliest entry arms one uv timer. At most async_concurrency events are
 * between admission and completion. Invariant: every in-memory event is in exactly one state:
 * ACCEPTING (insert not yet durable), READY (FIFO), WAITING (heap), MARKING (admitted, mark not yet
 * durable), RUNNING (its invocation in flight). Loop thread only.
 */
#include "async.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <unistd.h>

#include "api.h"
#include "async_sched.h"
#include "daemon.h"
#include "instance.h"
#include "log.h"
#include "logs.h"
#include "sqs.h" /* esm */
#include "store.h"

#define PUMP_SLICE 1024 /* events taken from the ready FIFO per loop iteration at most */

enum ev_state { EV_ACCEPTING, EV_READY, EV_WAITING, EV_MARKING, EV_RUNNING };

struct event {
    int64_t id;
    char request_id[37];
    char *function;
    char *qualifier; /* NULL = unqualified */
    char *payload;
    size_t payload_len;
    char *tick_rule, *tick_target; /* the schedule tick it delivers (INSERT only), or NULL */
    int64_t tick_s;
    struct nb_async_state st;
    int attempts; /* attempts started (approximateInvokeCount) */
    enum ev_state state;
    struct nb_heap_slot slot;
    struct event *next;      /* READY FIFO */
    struct nb_http_req *req; /* ACCEPTING: the client waiting for 202; NULL for destinations */
    struct nb_fn *fn;        /* MARKING: admitted against fn and cfg (refs) */
    struct nb_function *cfg;
    /* the last attempt, for destination records */
    int last_status; /* 0 = no attempt reached the function */
    bool last_fn_error;
    char *last_body; /* owned */
    size_t last_len;
    char last_version[32];
    /* destination records between the client's event and this one (0 for an event a client
     * sent); stored with the event, so a restart does not start the count again */
    int depth;
};

struct write {
    struct nb_store_event_write w;
    struct event *ev; /* INSERT, MARK: the event to carry on with when durable; else NULL */
    char *tick_rule, *tick_target; /* TICK: owned (w.ev points at them), freed once done */
};

struct batch {
    struct write *v;
    size_t n, cap;
};

enum retry_reason { RETRY_FN_ERROR, RETRY_THROTTLE, RETRY_PLATFORM, RETRY__MAX };

struct nb_async {
    struct nb_daemon *d;
    int64_t next_id;
    struct batch next, inflight;
    bool committing, stopping;
    atomic_bool worker_busy; /* commit_work is running (async_free waits for it) */
    uv_work_t work;
    int commit_rc;
    struct nb_err commit_err;
    struct event *ready_head, *ready_tail;
    struct nb_heap waiting;
    uv_timer_t retry_timer, kick_timer;
    int64_t running;    /* MARKING + RUNNING */
    int64_t held;       /* every in-memory event */
    int64_t held_bytes; /* their payloads */
    struct {
        uint64_t accepted, delivered, failed, dropped, redelivered, commits, writes, loops_stopped;
        uint64_t retries[RETRY__MAX];
        uint64_t destinations[2]; /* [0] OnSuccess, [1] OnFailure */
    } n;
};

static void pump(struct nb_async *a);
static void kick(struct nb_async *a);

/* ---- events ------------------------------------------------------------------------------ */

/* A NUL-terminated copy of len bytes that may contain NULs themselves. */
static char *memdup0(const char *p, size_t len)
{
    char *c = xmalloc(len + 1);
    memcpy(c, p, len);
    c[len] = '\0';
    return c;
}

static struct event *event_new(struct nb_async *a)
{
    struct event *ev = xcalloc(1, sizeof(*ev));
    ev->slot.idx = SIZE_MAX;
    a->held++;
    return ev;
}

static void event_free(struct nb_async *a, struct event *ev)
{
    free(ev->function);
    free(ev->qualifier);
    free(ev->payload);
    free(ev->tick_rule);
    free(ev->tick_target);
    a->held_bytes -= (int64_t)ev->payload_len;
    free(ev->last_body);
    if (ev->cfg)
        function_unref(ev->cfg);
    if (ev->fn)
        fn_unref(ev->fn);
    free(ev);
    a->held--;
}

static struct event *event_of_slot(struct nb_heap_slot *s)
{
    return (struct event *)((char *)s - offsetof(struct event, slot));
}

static void ready_push(struct nb_async *a, struct event *ev)
{
    ev->state = EV_READY;
    ev->next = NULL;
    if (a->ready_tail)
        a->ready_tail->next = ev;
    else
        a->ready_head = ev;
    a->ready_tail = ev;
}

static struct event *ready_pop(struct nb_async *a)
{
    struct event *ev = a->ready_head;
    if (ev) {
        a->ready_head = ev->next;
        if (!a->ready_head)
            a->ready_tail = NULL;
        ev->next = NULL;
    }
    return ev;
}

/* ---- group commit ------------------------------------------------------------------------ */

/* A new zeroed write at the end of b. */
static struct write *batch_push(struct batch *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
    }
    struct write *w = &b->v[b->n++];
    memset(w, 0, sizeof(*w));
    return w;
}

/* Frees what the writes b->v[0..n) own and empties b (its array is kept). */
static void batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->v[i].tick_rule);
        free(b->v[i].tick_target);
    }
    b->n = 0;
}

static void batch_add(struct batch *b, enum nb_store_event_op op, struct event *ev, bool keep)
{
    struct write *w = batch_push(b);
    w->w.op = op;
    w->w.ev.id = ev->id;
    w->w.ev.request_id = ev->request_id;
    w->w.ev.attempts = ev->attempts;
    w->w.ev.errors = ev->st.errors;
    if (op == STORE_EVENT_INSERT) {
        w->w.ev.function = ev->function;
        w->w.ev.qualifier = ev->qualifier;
        w->w.ev.payload = ev->payload;
        w->w.ev.payload_len = ev->payload_len;
        w->w.ev.created_ms = (int64_t)ev->st.created_ms;
        w->w.ev.depth = ev->depth;
        w->w.ev.tick_rule = ev->tick_rule;
        w->w.ev.tick_target = ev->tick_target;
        w->w.ev.tick_s = ev->tick_s;
    }
    if (op == STORE_EVENT_DELETE || op == STORE_EVENT_UNMARK)
        w->w.ev.request_id = NULL; /* the event may be freed before the commit */
    w->ev = keep ? ev : NULL;
}

static void commit_work(uv_work_t *w)
{
    struct nb_async *a = w->data;
    struct nb_store_event_write *v = xmalloc((a->inflight.n ? a->inflight.n : 1) * sizeof(*v));
    for (size_t i = 0; i < a->inflight.n; i++)
        v[i] = a->inflight.v[i].w;
    err_clear(&a->commit_err);
    a->commit_rc = store_events_write(a->d->store, v, a->inflight.n, &a->commit_err);
    free(v);
    atomic_store(&a->worker_busy, false);
}

static void reply_accepted(struct event *ev)
{
    struct nb_http_req *req = steal_ptr(ev->req);
    if (!req)
        return;
    struct nb_http_header h[] = {{"x-amzn-RequestId", ev->request_id}};
    http_reply(req, 202, h, ARRAY_SIZE(h), NULL, 0);
}

static void start_attempt(struct nb_async *a, struct event *ev);
static void attempt_failed_to_start(struct nb_async *a, struct event *ev);

static void commit_start(struct nb_async *a);

/* Carries on with the events of batch b, whose commit returned rc. Writes this queues go to
 * a->next (b is never a->next while this runs: the caller holds a->committing). */
static void batch_done(struct nb_async *a, struct batch *b, int rc, const char *msg)
{
    if (rc < 0) {
        log_err("async commit failed writes=%zu err=\"%s\"", b->n, msg);
    } else {
        a->n.commits++;
        a->n.writes += b->n;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct write *wr = &b->v[i];
        struct event *ev = wr->ev;
        if (wr->w.op == STORE_EVENT_TICK && rc < 0)
            log_err("schedule tick mark lost rule=%s target=%s tick=%lld", wr->tick_rule,
                    wr->tick_target, (long long)wr->w.ev.tick_s);
        if (!ev)
            continue;
        if (wr->w.op == STORE_EVENT_INSERT) {
            if (rc < 0) {
                if (ev->req)
                    api_error(steal_ptr(ev->req), 500, "ServiceException",
                              "cannot store the event: %s", msg);
                else
                    log_err("async destination record lost request_id=%s", ev->request_id);
                event_free(a, ev);
                continue;
            }
            a->n.accepted++;
            reply_accepted(ev);
            ready_push(a, ev);
        } else if (wr->w.op == STORE_EVENT_MARK) {
            if (rc < 0 || a->stopping)
                attempt_failed_to_start(a, ev);
            else
                start_attempt(a, ev);
        }
    }
    batch_clear(b);
}

static void commit_done(uv_work_t *w, int status)
{
    struct nb_async *a = w->data;
    int rc = status < 0 ? status : a->commit_rc;
    batch_done(a, &a->inflight, rc, status < 0 ? uv_strerror(status) : a->commit_err.msg);
    a->committing = false;
    commit_start(a);
    pump(a);
}

static void commit_start(struct nb_async *a)
{
    if (a->committing || a->next.n == 0)
        return;
    /* A deleted event is never delivered again, so the log lines of its attempts must be in its
     * function's log file (written; kill -9 of the daemon does not lose them) before the delete
     * can commit. */
    for (size_t i = 0; i < a->next.n; i++) {
        if (a->next.v[i].w.op == STORE_EVENT_DELETE && a->d->logs) {
            logs_flush(a->d->logs);
            break;
        }
    }
    struct batch t = a->inflight;
    a->inflight = a->next;
    a->next = t;
    a->committing = true;
    a->work.data = a;
    atomic_store(&a->worker_busy, true);
    int rc = uv_queue_work(a->d->loop, &a->work, commit_work, commit_done);
    if (rc < 0) {
        atomic_store(&a->worker_busy, false);
        batch_done(a, &a->inflight, rc, uv_strerror(rc));
        a->committing = false;
    }
}

static void queue_write(struct nb_async *a, enum nb_store_event_op op, struct event *ev, bool keep)
{
    batch_add(&a->next, op, ev, keep);
    commit_start(a);
}

/* ---- outcome of an attempt --------------------------------------------------------------- */

static void policy_for(struct nb_async *a, const struct event *ev, struct nb_async_policy *p,
                       const struct nb_eic **eic)
{
    const struct nb_config *c = &a->d->cfg;
    *eic = async_config_find(a->d, ev->function, ev->qualifier);
    p->max_retries =
        *eic && (*eic)->max_retries >= 0 ? (*eic)->max_retries : NB_ASYNC_DEFAULT_RETRIES;
    int age_s = *eic && (*eic)->max_age_s >= 0 ? (*eic)->max_age_s : NB_ASYNC_DEFAULT_AGE_S;
    p->max_age_ms = (uint64_t)age_s * (uint64_t)c->async_age_unit_ms;
    p->retry_delay_ms = (uint64_t)c->async_retry_delay_ms;
    p->backoff_min_ms = (uint64_t)c->async_backoff_min_ms;
    p->backoff_max_ms = (uint64_t)c->async_backoff_max_ms;
}

/* The payload as JSON for a record: parsed if it is JSON, else the text. New reference. */
static json_t *json_or_string(const char *s, size_t len)
{
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY, NULL);
    return j ? j : json_stringn_nocheck(s, len);
}

/* Lambda's destination record (LAMBDA.md §3.9). */
static char *destination_record(struct nb_async *a, const struct event *ev, const char *condition,
                                size_t *len)
{
    char ts[40];
    fmt_iso8601_ms(now_ms(), ts, sizeof(ts));
    _cleanup_free_ char *arn =
        xasprintf("arn:aws:lambda:%s:%s:function:%s:%s", a->d->cfg.region, a->d->cfg.account_id,
                  ev->function, ev->qualifier ? ev->qualifier : "$LATEST");
    json_t *rec =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:i}, s:o}", "version", "1.0", "timestamp", ts,
                  "requestContext", "requestId", ev->request_id, "functionArn", arn, "condition",
                  condition, "approximateInvokeCount", ev->attempts, "requestPayload",
                  json_or_string(ev->payload, ev->payload_len));
    if (ev->last_status) {
        json_t *rc = json_pack("{s:i, s:s}", "statusCode", ev->last_status, "executedVersion",
                               ev->last_version);
        if (ev->last_fn_error)
            json_object_set_new(rc, "functionError", json_string("Unhandled"));
        json_object_set_new(rec, "responseContext", rc);
        if (ev->last_status == 200)
            json_object_set_new(rec, "responsePayload",
                                ev->last_len ? json_or_string(ev->last_body, ev->last_len)
                                             : json_null());
    }
    char *s = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    if (!s)
        BUG("json_dumps failed");
    *len = strlen(s);
    return s;
}

static void fn_log(struct nb_async *a, const char *function, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
static void fn_log(struct nb_async *a, const char *function, const char *fmt, ...)
{
    if (!a->d->logs || !registry_find(a->d, function))
        return;
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *line = xvasprintf(fmt, ap);
    va_end(ap);
    logs_write(a->d->logs, function, "async", now_ms(), line, strlen(line));
}

/* esm: queue destinations. The record is sent first (sqs_send answers after its fsync) and the
 * event's row is deleted only then: a crash in between delivers the event again after the restart
 * (a duplicate record at worst, never a lost one); a failed send leaves the row too. */
struct queue_send {
    struct nb_async *a;
    struct event *ev;
    char *dest;
};

static void queue_sent(void *data, int status, const char *message_id)
{
    struct queue_send *qs = data;
    if (status < 0) {
        log_err("async destination record not stored request_id=%s destination=%s status=%d: "
                "the event stays stored and runs again after a restart",
                qs->ev->request_id, qs->dest, status);
    } else {
        log_info("async destination record sent request_id=%s destination=%s message_id=%s",
                 qs->ev->request_id, qs->dest, message_id ? message_id : "");
        queue_write(qs->a, STORE_EVENT_DELETE, qs->ev, false);
    }
    event_free(qs->a, qs->ev);
    free(qs->dest);
    free(qs);
}

/* Sends body (attrs: MessageAttributes or NULL) to the queue dest for ev; false when the queue
 * refused it at once (gone, or the body is not a valid message). */
static bool queue_send_start(struct nb_async *a, struct event *ev, const char *dest,
                             const char *body, json_t *attrs)
{
    struct queue_send *qs = xcalloc(1, sizeof(*qs));
    qs->a = a;
    qs->ev = ev;
    qs->dest = xstrdup(dest);
    int rc = a->d->sqs ? sqs_send(a->d->sqs, dest, body, attrs, queue_sent, qs) : -ENOENT;
    if (rc < 0) {
        log_warn("async: queue %s refused the message request_id=%s err=%s", dest, ev->request_id,
                 strerror(-rc));
        free(qs->dest);
        free(qs);
        return false;
    }
    return true;
}

/* The function's DeadLetterConfig target for a failed event without an OnFailure destination:
 * the event's payload as the body, RequestID/ErrorCode/ErrorMessage as message attributes (as
 * Lambda). False when there is none or it refused the message. */
static bool send_dead_letter(struct nb_async *a, struct event *ev, const char *condition)
{
    struct nb_fn *fn = registry_find(a->d, ev->function);
    struct nb_err err = {0};
    struct nb_function *cfg = fn ? registry_resolve(a->d, fn, ev->qualifier, &err) : NULL;
    if (!cfg || !cfg->dlq_arn)
        return false;
    _cleanup_free_ char *body = memdup0(ev->payload, ev->payload_len);
    _cleanup_free_ char *msg =
        ev->last_body && ev->last_len ? memdup0(ev->last_body, ev->last_len) : xstrdup(condition);
    char code[16];
    snprintf(code, sizeof(code), "%d", ev->last_status ? ev->last_status : 200);
    json_t *attrs =
        json_pack("{s:{s:s,s:s}, s:{s:s,s:s}, s:{s:s,s:s}}", "RequestID", "DataType", "String",
                  "StringValue", ev->request_id, "ErrorCode", "DataType", "Number", "StringValue",
                  code, "ErrorMessage", "DataType", "String", "StringValue", msg);
    bool sent = attrs && queue_send_start(a, ev, cfg->dlq_arn, body, attrs);
    json_decref(attrs);
    if (sent)
        log_info("async event failed request_id=%s function=%s condition=%s attempts=%d "
                 "dead_letter_queue=%s",
                 ev->request_id, ev->function, condition, ev->attempts, cfg->dlq_arn);
    return sent;
}

static bool send_to_queue(struct nb_async *a, struct event *ev, const char *dest,
                          const char *condition, bool ok)
{
    size_t len;
    _cleanup_free_ char *rec = destination_record(a, ev, condition, &len);
    struct queue_send *qs = xcalloc(1, sizeof(*qs));
    qs->a = a;
    qs->ev = ev;
    qs->dest = xstrdup(dest);
    int rc = a->d->sqs ? sqs_send(a->d->sqs, dest, rec, NULL, queue_sent, qs) : -ENOENT;
    if (rc < 0) {
        log_warn("async destination queue refused the record request_id=%s destination=%s "
                 "err=%s",
                 ev->request_id, dest, strerror(-rc));
        free(qs->dest);
        free(qs);
        return false;
    }
    a->n.destinations[ok ? 0 : 1]++;
    log_info("async event finished request_id=%s function=%s condition=%s attempts=%d "
             "destination=%s",
             ev->request_id, ev->function, condition, ev->attempts, dest);
    return true;
}

/* The event is over: its destination record (if any) and its delete commit together. */
static void finish(struct nb_async *a, struct event *ev, const char *condition, const char *why)
{
    bool ok = !strcmp(condition, "Success");
    const struct nb_eic *eic = async_config_find(a->d, ev->function, ev->qualifier);
    const char *dest = eic ? (ok ? eic->on_success : eic->on_failure) : NULL;
    _cleanup_free_ char *dname = NULL, *dqual = NULL;
    struct nb_err err = {0};
    int kind = dest ? async_destination_parse(a->d->cfg.region, a->d->cfg.account_id, dest, &dname,
                                              &dqual, &err)
                    : 0;
    if (kind < 0) {
        log_warn("async destination unusable request_id=%s destination=%s err=\"%s\"",
                 ev->request_id, dest, err.msg);
        dest = NULL;
    }
    if (dest && ev->depth >= NB_ASYNC_DESTINATION_DEPTH_MAX) {
        /* a chain of destinations that went round (a function naming itself, or A -> B -> A):
         * stop it like Lambda's recursive loop detection, after 16 records */
        log_warn("async destination record not sent request_id=%s function=%s destination=%s "
                 "reason=\"recursive loop: %d destination records in a chain\"",
                 ev->request_id, ev->function, dest, ev->depth);
        fn_log(a, ev->function,
               "nimbus: destination record not sent: RequestId: %s Destination: %s Reason: "
               "recursive loop detected after %d destination records",
               ev->request_id, dest, ev->depth);
        dest = NULL;
        a->n.loops_stopped++;
    }
    if (ok)
        a->n.delivered++;
    else
        a->n.failed++;
    if (dest && kind == 1 && send_to_queue(a, ev, dest, condition, ok))
        return; /* esm: deleted once the record is durable in the queue */
    if (kind == 1)
        dest = NULL; /* the queue is gone or refused the record: dropped below */
    if (!ok && !dest && send_dead_letter(a, ev, condition))
        return; /* esm: deleted once the dead letter is durable in the queue */
    /* Destination kinds: a Lambda function gets the record as a new asynchronous event (below).
     * Queues, topics and event buses are refused by async_destination_parse until they exist;
     * their delivery goes here, beside this branch. */
    if (dest) {
        struct event *rec = event_new(a);
        rec->id = a->next_id++;
        uuid_v4(rec->request_id);
        rec->depth = ev->depth + 1;
        rec->function = steal_ptr(dname);
        rec->qualifier = steal_ptr(dqual);
        rec->payload = destination_record(a, ev, condition, &rec->payload_len);
        a->held_bytes += (int64_t)rec->payload_len;
        rec->st.created_ms = now_ms();
        rec->state = EV_ACCEPTING;
        a->n.destinations[ok ? 0 : 1]++;
        log_info("async event finished request_id=%s function=%s condition=%s attempts=%d "
                 "destination=%s destination_request_id=%s",
                 ev->request_id, ev->function, condition, ev->attempts, dest, rec->request_id);
        queue_write(a, STORE_EVENT_INSERT, rec, true);
    } else if (!ok) {
        a->n.dropped++;
        log_warn("async event dropped request_id=%s function=%s condition=%s attempts=%d%s%s",
                 ev->request_id, ev->function, condition, ev->attempts, why ? " reason=" : "",
                 why ? why : "");
        fn_log(a, ev->function,
               "nimbus: asynchronous invocation dropped: RequestId: %s Condition: %s "
               "ApproximateInvokeCount: %d%s%s",
               ev->request_id, condition, ev->attempts, why ? " Reason: " : "", why ? why : "");
    }
    queue_write(a, STORE_EVENT_DELETE, ev, false);
    event_free(a, ev);
}

static void arm_retry_timer(struct nb_async *a);

static void wait_until(struct nb_async *a, struct event *ev, uint64_t due_ms)
{
    ev->state = EV_WAITING;
    ev->slot.due_ms = due_ms;
    heap_push(&a->waiting, &ev->slot);
    arm_retry_timer(a);
}

/* Applies the rules to the result r of an attempt of ev (not running any more). marked: the
 * attempt was marked in flight in the store; a retry then records the function errors so far and
 * clears the mark (a finished event's row is deleted instead). */
static void outcome(struct nb_async *a, struct event *ev, enum nb_async_result r, bool marked)
{
    struct nb_async_policy p;
    const struct nb_eic *eic;
    policy_for(a, ev, &p, &eic);
    struct nb_async_decision dec;
    async_decide(&p, &ev->st, r, now_ms(), &dec);
    if (dec.action != ASYNC_RETRY) {
        finish(a, ev, dec.condition, NULL);
        return;
    }
    a->n.retries[r == ASYNC_FN_ERROR   ? RETRY_FN_ERROR
                 : r == ASYNC_THROTTLE ? RETRY_THROTTLE
                                       : RETRY_PLATFORM]++;
    if (marked)
        queue_write(a, STORE_EVENT_UNMARK, ev, false);
    log_debug("async retry request_id=%s function=%s in_ms=%llu errors=%d", ev->request_id,
              ev->function, (unsigned long long)(dec.due_ms - now_ms()), ev->st.errors);
    wait_until(a, ev, dec.due_ms);
}

static void on_attempt_done(struct nb_invocation *inv, const struct nb_inv_result *res)
{
    struct event *ev = inv->done_data;
    struct nb_async *a = inv->d->async;
    a->running--;
    ev->last_status = res->status;
    ev->last_fn_error = res->status == 200 && res->outcome != NB_OK;
    free(ev->last_body);
    ev->last_body = memdup0(res->body, res->len);
    ev->last_len = res->len;
    snprintf(ev->last_version, sizeof(ev->last_version), "%s", inv->cfg->version);
    enum nb_async_result r = res->status == 200
                                 ? (res->outcome == NB_OK ? ASYNC_OK : ASYNC_FN_ERROR)
                             : res->status == 429 ? ASYNC_THROTTLE
                                                  : ASYNC_PLATFORM;
    if (a->stopping || (a->d->draining && r != ASYNC_OK)) {
        /* Shutting down (a failure now is likely the drain killing the instance): not counted;
         * the row stays marked in flight and is delivered again after the restart. */
        ev->state = EV_WAITING;
        ev->slot.due_ms = UINT64_MAX;
        heap_push(&a->waiting, &ev->slot);
        return;
    }
    outcome(a, ev, r, true);
    /* pump later: this invocation still holds its admission until it is freed */
    kick(a);
}

static void start_attempt(struct nb_async *a, struct event *ev)
{
    struct nb_invocation *inv =
        invoke_new(a->d, ev->fn, ev->cfg, ev->request_id, memdup0(ev->payload, ev->payload_len),
                   ev->payload_len, NULL);
    function_unref(steal_ptr(ev->cfg));
    fn_unref(steal_ptr(ev->fn));
    inv->on_done = on_attempt_done;
    inv->done_data = ev;
    ev->state = EV_RUNNING;
    invoke_start(inv);
}

/* The mark did not commit (or shutdown): give the admission back and try again later. */
static void attempt_failed_to_start(struct nb_async *a, struct event *ev)
{
    pool_release(a->d, ev->fn, ev->cfg);
    function_unref(steal_ptr(ev->cfg));
    fn_unref(steal_ptr(ev->fn));
    a->running--;
    ev->attempts--;
    if (a->stopping) {
        ev->state = EV_WAITING;
        ev->slot.due_ms = UINT64_MAX;
        heap_push(&a->waiting, &ev->slot);
        return;
    }
    outcome(a, ev, ASYNC_PLATFORM, false);
}

/* ---- dispatcher -------------------------------------------------------------------------- */

/* Takes one ready event towards an attempt (or its end). */
static void dispatch(struct nb_async *a, struct event *ev)
{
    struct nb_daemon *d = a->d;
    struct nb_async_policy p;
    const struct nb_eic *eic;
    policy_for(a, ev, &p, &eic);
    if (async_expired(&p, &ev->st, now_ms())) {
        finish(a, ev, "EventAgeExceeded", NULL);
        return;
    }
    struct nb_fn *fn = registry_find(d, ev->function);
    struct nb_err err = {0};
    struct nb_function *cfg = fn ? registry_resolve(d, fn, ev->qualifier, &err) : NULL;
    if (!cfg) {
        /* the function (or qualifier) is gone: nothing could ever run the event */
        finish(a, ev, "RetriesExhausted", fn ? err.msg : "function not found");
        return;
    }
    const char *reason = pool_admit(d, fn, cfg);
    if (reason) {
        metrics_throttle(d, fn, cfg);
        outcome(a, ev, ASYNC_THROTTLE, false);
        return;
    }
    fn_ref(fn);
    ev->fn = fn;
    ev->cfg = function_ref(cfg);
    ev->attempts++;
    ev->state = EV_MARKING;
    a->running++;
    queue_write(a, STORE_EVENT_MARK, ev, true);
}

static void pump(struct nb_async *a)
{
    struct nb_daemon *d = a->d;
    /* Throttled events do not count as running, so a large backlog of a throttled function could
     * keep this loop going: take a bounded slice and continue on the next loop iteration. */
    for (int n = 0; !a->stopping && !d->draining && a->running < d->cfg.async_concurrency; n++) {
        if (n == PUMP_SLICE) {
            kick(a);
            return;
        }
        struct event *ev = ready_pop(a);
        if (!ev)
            break;
        dispatch(a, ev);
    }
}

static void on_kick(uv_timer_t *t)
{
    pump(t->data);
}

static void kick(struct nb_async *a)
{
    if (!a->stopping && !uv_is_active((uv_handle_t *)&a->kick_timer))
        uv_timer_start(&a->kick_timer, on_kick, 0, 0);
}

static void on_retry_timer(uv_timer_t *t)
{
    struct nb_async *a = t->data;
    uint64_t now = now_ms();
    struct nb_heap_slot *s;
    while ((s = heap_peek(&a->waiting)) && s->due_ms <= now) {
        heap_pop(&a->waiting);
        ready_push(a, event_of_slot(s));
    }
    arm_retry_timer(a);
    pump(a);
}

static void arm_retry_timer(struct nb_async *a)
{
    struct nb_heap_slot *s = heap_peek(&a->waiting);
    if (a->stopping || !s || s->due_ms == UINT64_MAX) {
        uv_timer_stop(&a->retry_timer);
        return;
    }
    uint64_t now = now_ms();
    uv_timer_start(&a->retry_timer, on_retry_timer, s->due_ms > now ? s->due_ms - now : 0, 0);
}

/* ---- accept ------------------------------------------------------------------------------ */

static bool queue_full(struct nb_async *a, size_t len)
{
    const struct nb_config *c = &a->d->cfg;
    return a->held >= c->async_queue_max || a->held_bytes + (int64_t)len > c->async_queue_max_bytes;
}

/* A new ACCEPTING event of function:qualifier taking payload (malloc'd, NUL-terminated). */
static struct event *event_accepting(struct nb_async *a, const char *function,
                                     const char *qualifier, char *payload, size_t len)
{
    struct event *ev = event_new(a);
    ev->id = a->next_id++;
    uuid_v4(ev->request_id);
    ev->function = xstrdup(function);
    ev->qualifier = qualifier ? xstrdup(qualifier) : NULL;
    ev->payload = payload;
    ev->payload_len = len;
    a->held_bytes += (int64_t)ev->payload_len;
    ev->st.created_ms = now_ms();
    ev->state = EV_ACCEPTING;
    return ev;
}

void async_accept(struct nb_daemon *d, struct nb_fn *fn, const char *qualifier,
                  struct nb_http_req *req)
{
    struct nb_async *a = d->async;
    if (queue_full(a, req->body_len)) {
        api_error(req, 429, "TooManyRequestsException",
                  "Rate Exceeded. (nimbus holds %lld asynchronous events of %lld bytes: "
                  "async_queue_max, async_queue_max_bytes)",
                  (long long)a->held, (long long)a->held_bytes);
        return;
    }
    char *payload;
    size_t len;
    if (req->body_len) {
        payload = http_req_steal_body(req, &len);
    } else {
        payload = xstrdup("{}");
        len = 2;
    }
    struct event *ev = event_accepting(a, fn->name, qualifier, payload, len);
    ev->req = req;
    queue_write(a, STORE_EVENT_INSERT, ev, true);
}

int async_submit(struct nb_daemon *d, const char *function, const char *qualifier, char *payload,
                 size_t len, const struct nb_async_origin *o, struct nb_err *err)
{
    struct nb_async *a = d->async;
    if (!a || a->stopping) {
        free(payload);
        return err_set(err, ESHUTDOWN, "asynchronous invocations are stopping");
    }
    if (len > NB_ASYNC_PAYLOAD_MAX || queue_full(a, len)) {
        free(payload);
        return err_set(err, EAGAIN,
                       "asynchronous queue full (%lld events of %lld bytes) or payload too large",
                       (long long)a->held, (long long)a->held_bytes);
    }
    struct event *ev = event_accepting(a, function, qualifier, payload, len);
    if (o) {
        if (o->request_id[0])
            snprintf(ev->request_id, sizeof(ev->request_id), "%s", o->request_id);
        if (o->tick_rule) {
            ev->tick_rule = xstrdup(o->tick_rule);
            ev->tick_target = xstrdup(o->tick_target);
            ev->tick_s = o->tick_s;
        }
    }
    queue_write(a, STORE_EVENT_INSERT, ev, true);
    return 0;
}

int async_record_tick(struct nb_daemon *d, const char *rule, const char *target, int64_t tick_s,
                      struct nb_err *err)
{
    struct nb_async *a = d->async;
    if (!a || a->stopping)
        return err_set(err, ESHUTDOWN, "asynchronous invocations are stopping");
    struct write *w = batch_push(&a->next);
    w->w.op = STORE_EVENT_TICK;
    w->tick_rule = xstrdup(rule);
    w->tick_target = xstrdup(target);
    w->w.ev.tick_rule = w->tick_rule;
    w->w.ev.tick_target = w->tick_target;
    w->w.ev.tick_s = tick_s;
    commit_start(a);
    return 0;
}

/* ---- start, stop, metrics ---------------------------------------------------------------- */

static int load_event(void *data, const struct nb_store_event *se)
{
    struct nb_async *a = data;
    struct event *ev = event_new(a);
    ev->id = se->id;
    snprintf(ev->request_id, sizeof(ev->request_id), "%s", se->request_id);
    ev->function = xstrdup(se->function);
    ev->qualifier = se->qualifier ? xstrdup(se->qualifier) : NULL;
    ev->payload = xmalloc(se->payload_len + 1);
    memcpy(ev->payload, se->payload, se->payload_len);
    ev->payload[se->payload_len] = '\0';
    ev->payload_len = se->payload_len;
    a->held_bytes += (int64_t)ev->payload_len;
    ev->st.created_ms = (uint64_t)se->created_ms;
    ev->st.errors = se->errors;
    ev->attempts = se->attempts;
    ev->depth = se->depth;
    if (se->inflight)
        a->n.redelivered++;
    if (se->id >= a->next_id)
        a->next_id = se->id + 1;
    ready_push(a, ev);
    return 0;
}

int async_start(struct nb_daemon *d, struct nb_err *err)
{
    struct nb_async *a = xcalloc(1, sizeof(*a));
    a->d = d;
    a->next_id = 1;
    d->async = a;
    uv_timer_init(d->loop, &a->retry_timer);
    uv_timer_init(d->loop, &a->kick_timer);
    a->retry_timer.data = a->kick_timer.data = a;
    int rc = async_config_load(d, err);
    if (rc < 0)
        return rc;
    rc = store_events_each(d->store, load_event, a, err);
    if (rc < 0)
        return err_prefix(err, "cannot load asynchronous events");
    if (a->held)
        log_info("async events loaded pending=%lld possible_duplicates=%llu", (long long)a->held,
                 (unsigned long long)a->n.redelivered);
    kick(a);
    return 0;
}

void async_stop(struct nb_daemon *d)
{
    struct nb_async *a = d->async;
    if (!a || a->stopping)
        return;
    a->stopping = true;
    uv_close((uv_handle_t *)&a->retry_timer, NULL);
    uv_close((uv_handle_t *)&a->kick_timer, NULL);
    /* Shutdown only: the writes still queued (deletes of finished events, inserts waiting for
     * their 202) are committed here, on the loop thread, so a clean stop redelivers nothing. The
     * store's lock orders this after a commit in flight on a worker. */
    if (a->next.n && !a->committing) {
        if (d->logs)
            logs_flush(d->logs);
        struct batch b = a->next;
        a->next = (struct batch){0};
        a->committing = true;
        struct nb_store_event_write *v = xmalloc(b.n * sizeof(*v));
        for (size_t i = 0; i < b.n; i++)
            v[i] = b.v[i].w;
        struct nb_err err = {0};
        int rc = store_events_write(d->store, v, b.n, &err);
        free(v);
        batch_done(a, &b, rc, err.msg);
        a->committing = false;
        free(b.v);
    }
}

void async_free(struct nb_daemon *d)
{
    struct nb_async *a = d->async;
    if (!a)
        return;
    /* the loop may have been stopped with a commit on a worker thread: the store must outlive it */
    while (atomic_load(&a->worker_busy))
        usleep(1000);
    struct event *ev;
    while ((ev = ready_pop(a)))
        event_free(a, ev);
    struct nb_heap_slot *s;
    while ((s = heap_pop(&a->waiting)))
        event_free(a, event_of_slot(s));
    /* events still ACCEPTING, MARKING or RUNNING belong to writes or invocations that never
     * completed (the loop was stopped); they are leaked on purpose rather than freed under them */
    heap_release(&a->waiting);
    batch_clear(&a->next);
    batch_clear(&a->inflight);
    free(a->next.v);
    free(a->inflight.v);
    async_config_free(d);
    free(a);
    d->async = NULL;
}

void async_metrics_render(struct nb_daemon *d, struct nb_buf *b)
{
    struct nb_async *a = d->async;
    if (!a)
        return;
    struct {
        const char *name, *type, *help;
        uint64_t v;
    } rows[] = {
        {"nimbus_async_accepted_total", "counter",
         "Asynchronous events accepted (stored durably; 202), destination records included.",
         a->n.accepted},
        {"nimbus_async_delivered_total", "counter",
         "Asynchronous events whose function succeeded (condition Success).", a->n.delivered},
        {"nimbus_async_failed_total", "counter",
         "Asynchronous events that ended without success (RetriesExhausted, EventAgeExceeded).",
         a->n.failed},
        {"nimbus_async_dropped_total", "counter",
         "Failed asynchronous events without an OnFailure destination (logged, then deleted).",
         a->n.dropped},
        {"nimbus_async_loops_stopped_total", "counter",
         "Destination records not sent because their chain went round 16 times (a function "
         "that is its own destination, directly or through others).",
         a->n.loops_stopped},
        {"nimbus_async_redelivered_total", "counter",
         "Asynchronous events found in flight at start-up and delivered again (possible "
         "duplicates).",
         a->n.redelivered},
        {"nimbus_async_queue_depth", "gauge",
         "Asynchronous events held: accepted and not finished (running ones included).",
         (uint64_t)a->held},
        {"nimbus_async_queue_bytes", "gauge", "Payload bytes of the asynchronous events held.",
         (uint64_t)a->held_bytes},
        {"nimbus_async_running", "gauge", "Asynchronous attempts admitted and not finished.",
         (uint64_t)a->running},
        {"nimbus_async_commits_total", "counter",
         "Group commits of the asynchronous event journal (one fsync each).", a->n.commits},
        {"nimbus_async_commit_writes_total", "counter",
         "Event journal writes (insert, mark, unmark, delete, tick) in those commits.",
         a->n.writes},
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
        buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", rows[i].name, rows[i].help,
                    rows[i].name, rows[i].type, rows[i].name, (unsigned long long)rows[i].v);
    static const char *const reasons[RETRY__MAX] = {"function_error", "throttle", "platform"};
    buf_appends(b, "# HELP nimbus_async_retries_total Asynchronous attempts scheduled again, by "
                   "reason.\n# TYPE nimbus_async_retries_total counter\n");
    for (size_t i = 0; i < RETRY__MAX; i++)
        buf_appendf(b, "nimbus_async_retries_total{reason=\"%s\"} %llu\n", reasons[i],
                    (unsigned long long)a->n.retries[i]);
    buf_appends(b, "# HELP nimbus_async_destination_records_total Destination records sent, by "
                   "destination.\n# TYPE nimbus_async_destination_records_total counter\n");
    buf_appendf(b, "nimbus_async_destination_records_total{destination=\"OnSuccess\"} %llu\n",
                (unsigned long long)a->n.destinations[0]);
    buf_appendf(b, "nimbus_async_destination_records_total{destination=\"OnFailure\"} %llu\n",
                (unsigned long long)a->n.destinations[1]);
}
