/*
 * sqs.c - the queue service (see sqs.h): errors, queues and their operations, the records handed
 * to the commit queue, long polls, receive (with retention and redrive), the operation table and
 * start-up. The message index is sqs_index.c; the message operations are sqs_message.c.
 *
 * FIFO queues chain each message into its group's list in send order; a group delivers
 * only from its head run of visible messages, so a later message of a group never overtakes an
 * earlier one that is in flight. Promotion from heap to ready happens lazily whenever the queue
 * is read, and a per-queue timer wakes held long polls at the earliest of their deadlines and the
 * heap's next visibility. Retention is enforced lazily too: an expired message is dropped when a
 * receive meets it or the index is rebuilt.
 * Durability: sends and deletes reply from the commit callback; a message enters the index only
 * after its send is durable. Loop thread only.
 */
#include "sqs_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <strings.h>
#include <uv.h>

#include "codec.h"
#include "commit_queue.h"
#include "daemon.h"
#include "log.h"
#include "sqs_codec.h"
#include "store.h"

/* ---- errors ---------------------------------------------------------------------------- */

static const struct {
    const char *code, *type;
    int status;
} known_errors[] = {
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", 400},
    {"QueueAlreadyExists", "QueueNameExists", 400},
    {"InvalidParameterValue", "InvalidParameterValueException", 400},
    {"MissingParameter", "MissingParameterException", 400},
    {"InvalidAttributeName", "InvalidAttributeName", 400},
    {"InvalidAttributeValue", "InvalidAttributeValue", 400},
    {"ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 400},
    {"AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight", 400},
    {"InvalidMessageContents", "InvalidMessageContents", 400},
    {"AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "TooManyEntriesInBatchRequest", 400},
    {"AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest", 400},
    {"AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinct", 400},
    {"AWS.SimpleQueueService.InvalidBatchEntryId", "InvalidBatchEntryId", 400},
    {"AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong", 400},
    {"InvalidAction", "InvalidAction", 400},
    {"MissingAction", "MissingAction", 400},
    {"AccessDenied", "AccessDeniedException", 403},
    {"InternalError", "InternalError", 500},
};

void sqs_error_set(struct nb_sqs_error *e, const char *code, const char *fmt, ...)
{
    e->status = 400;
    e->code = "InternalError";
    e->type = "InternalError";
    for (size_t i = 0; i < ARRAY_SIZE(known_errors); i++)
        if (!strcmp(known_errors[i].code, code)) {
            e->code = known_errors[i].code;
            e->type = known_errors[i].type;
            e->status = known_errors[i].status;
        }
    e->sender = e->status < 500;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

void sqs__fail(struct nb_sqs_call *c, const char *code, const char *fmt, ...)
{
    struct nb_sqs_error e;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sqs_error_set(&e, code, "%s", msg);
    c->reply(c, NULL, &e);
}

void sqs__ok(struct nb_sqs_call *c, json_t *out)
{
    c->reply(c, out, NULL);
    json_decref(out);
}

/* ---- input helpers ----------------------------------------------------------------------- */

const char *sqs__in_str(json_t *in, const char *name)
{
    return json_string_value(json_object_get(in, name));
}

/* 1 when present and valid into *v, 0 when absent, -1 when invalid. */
int sqs__in_int(json_t *in, const char *name, int64_t min, int64_t max, int64_t *v)
{
    json_t *j = json_object_get(in, name);
    if (!j || json_is_null(j))
        return 0;
    int64_t x;
    if (json_is_integer(j))
        x = json_integer_value(j);
    else if (!json_is_string(j) || parse_i64(json_string_value(j), INT64_MIN, INT64_MAX, &x) < 0)
        return -1;
    if (x < min || x > max)
        return -1;
    *v = x;
    return 1;
}

bool sqs__truthy(json_t *j)
{
    return json_is_true(j) || (json_is_string(j) && !strcasecmp(json_string_value(j), "true"));
}

/* ---- durability ---------------------------------------------------------------------------- */

static const char *pend_str(struct pend *p, char *s)
{
    p->strs = xrealloc(p->strs, (p->n_strs + 1) * sizeof(*p->strs));
    p->strs[p->n_strs++] = s;
    return s;
}

static struct nb_sqs_rec *pend_rec(struct pend *p, enum nb_sqs_rec_kind kind, const char *queue)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 4;
        p->recs = xrealloc(p->recs, p->cap * sizeof(*p->recs));
    }
    struct nb_sqs_rec *r = &p->recs[p->n++];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->queue = pend_str(p, xstrdup(queue));
    return r;
}

struct pend *sqs__pend_new(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct pend *p = xcalloc(1, sizeof(*p));
    p->s = s;
    p->call = c;
    return p;
}

void sqs__pend_free(struct pend *p)
{
    for (size_t i = 0; i < p->n_strs; i++)
        free(p->strs[i]);
    free(p->strs);
    free(p->recs);
    for (size_t i = 0; i < p->n_msgs; i++)
        sqs__msg_free(p->msgs[i]);
    free(p->msgs);
    json_decref(p->out);
    free(p->queue);
    free(p);
}

static void pend_done(struct nb_commit_op *op, int status, const struct nb_err *err)
{
    struct pend *p = (struct pend *)op;
    if (status < 0)
        log_err("sqs commit failed err=\"%s\"", err ? err->msg : "?");
    if (p->then)
        p->then(p, status, err);
    else if (p->call) {
        if (status < 0)
            sqs__fail(p->call, "InternalError", "cannot store the change: %s", err ? err->msg : "");
        else
            sqs__ok(p->call, json_incref(p->out));
    }
    sqs__pend_free(p);
}

void sqs__pend_submit(struct pend *p)
{
    p->op.done = pend_done;
    commit_queue_submit(p->s->cq, &p->op);
}

static int write_batch(void *data, struct nb_commit_op *const *ops, size_t n, struct nb_err *err)
{
    struct nb_sqs *s = data;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += ((struct pend *)ops[i])->n;
    if (!total)
        return 0;
    struct nb_sqs_rec *all = xmalloc(total * sizeof(*all));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct pend *p = (struct pend *)ops[i];
        if (!p->n) /* an op with no record has recs NULL: nothing to copy */
            continue;
        memcpy(all + k, p->recs, p->n * sizeof(*all));
        k += p->n;
    }
    int r = store_sqs_write(s->st, all, total, err);
    free(all);
    return r;
}

static char *msg_doc(const struct sqs_msg *m)
{
    json_t *o =
        json_pack("{s:s, s:s, s:I}", "id", m->id, "body", m->body, "sent", (json_int_t)m->sent_ms);
    if (m->attrs)
        json_object_set(o, "attrs", m->attrs);
    if (m->sys)
        json_object_set(o, "sys", m->sys);
    if (m->group)
        json_object_set_new(o, "group", json_string(m->group));
    if (m->dedup)
        json_object_set_new(o, "dedup", json_string(m->dedup));
    char *doc = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return doc;
}

void sqs__rec_put_msg(struct pend *p, const struct sqs_queue *q, const struct sqs_msg *m)
{
    struct nb_sqs_rec *r = pend_rec(p, NB_SQS_PUT_MSG, q->name);
    r->seq = m->seq;
    r->doc = pend_str(p, msg_doc(m));
    r->visible_ms = m->visible_ms;
    r->receive_count = m->receive_count;
    r->first_receive_ms = m->first_receive_ms;
}

void sqs__rec_upd_msg(struct pend *p, const struct sqs_queue *q, const struct sqs_msg *m)
{
    struct nb_sqs_rec *r = pend_rec(p, NB_SQS_UPD_MSG, q->name);
    r->seq = m->seq;
    r->visible_ms = m->visible_ms;
    r->receive_count = m->receive_count;
    r->first_receive_ms = m->first_receive_ms;
}

void sqs__rec_del_msg(struct pend *p, const struct sqs_queue *q, uint64_t seq)
{
    pend_rec(p, NB_SQS_DEL_MSG, q->name)->seq = seq;
}

static char *queue_doc(const struct sqs_queue *q)
{
    json_t *o = json_pack("{s:O, s:O, s:I, s:I}", "attrs", q->attrs, "tags", q->tags, "created",
                          (json_int_t)q->created_s, "modified", (json_int_t)q->modified_s);
    char *doc = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return doc;
}

static void rec_put_queue(struct pend *p, const struct sqs_queue *q)
{
    pend_rec(p, NB_SQS_PUT_QUEUE, q->name)->doc = pend_str(p, queue_doc(q));
}

/* Fire-and-forget write (receive bookkeeping, expiry): no reply waits for it. */
static struct pend *bg_pend(struct nb_sqs *s, struct pend **bg)
{
    if (!*bg)
        *bg = sqs__pend_new(s, NULL);
    return *bg;
}

static void bg_submit(struct pend *bg)
{
    if (bg && bg->n)
        sqs__pend_submit(bg);
    else if (bg)
        sqs__pend_free(bg);
}

/* ---- queues ------------------------------------------------------------------------------ */

struct sqs_queue *sqs__queue_find(struct nb_sqs *s, const char *name)
{
    for (size_t i = 0; i < s->n_queues; i++)
        if (!strcmp(s->queues[i]->name, name))
            return s->queues[i];
    return NULL;
}

struct sqs_queue *sqs__queue_by_arn(struct nb_sqs *s, const char *arn)
{
    const char *c = arn ? strrchr(arn, ':') : NULL;
    struct sqs_queue *q = c ? sqs__queue_find(s, c + 1) : NULL;
    return q && !strcmp(q->arn, arn) ? q : NULL;
}

static const char *const attr_names[] = {
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
};
static const char *const ro_attr_names[] = {
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
};

static bool is_settable(const char *n)
{
    for (size_t i = 0; i < ARRAY_SIZE(attr_names); i++)
        if (!strcmp(attr_names[i], n))
            return true;
    return false;
}

static int64_t attr_i(json_t *attrs, const char *n, int64_t dflt)
{
    int64_t v;
    return sqs__in_int(attrs, n, INT64_MIN, INT64_MAX, &v) == 1 ? v : dflt;
}

/* Parses q->attrs into the fast fields. */
static void queue_parse(struct sqs_queue *q)
{
    q->visibility = attr_i(q->attrs, "VisibilityTimeout", 30);
    q->delay = attr_i(q->attrs, "DelaySeconds", 0);
    q->retention = attr_i(q->attrs, "MessageRetentionPeriod", 345600);
    q->max_size = attr_i(q->attrs, "MaximumMessageSize", 262144);
    q->wait = attr_i(q->attrs, "ReceiveMessageWaitTimeSeconds", 0);
    q->content_dedup = sqs__truthy(json_object_get(q->attrs, "ContentBasedDeduplication"));
    free(q->dlq_arn);
    q->dlq_arn = NULL;
    q->max_receive = 0;
    const char *rp = sqs__in_str(q->attrs, "RedrivePolicy");
    if (rp && *rp) {
        json_t *j = json_loads(rp, 0, NULL);
        const char *t = sqs__in_str(j, "deadLetterTargetArn");
        int64_t mr;
        if (t && sqs__in_int(j, "maxReceiveCount", 1, 1000, &mr) == 1) {
            q->dlq_arn = xstrdup(t);
            q->max_receive = mr;
        }
        json_decref(j);
    }
}

/* Validates one settable attribute; 0 or fails c. */
static int check_attr(struct nb_sqs_call *c, bool fifo, bool creating, const char *n, json_t *v)
{
    if (!is_settable(n)) {
        sqs__fail(c, "InvalidAttributeName", "Unknown Attribute %s.", n);
        return -1;
    }
    if (!json_is_string(v)) {
        sqs__fail(c, "InvalidAttributeValue", "Invalid value for the parameter %s.", n);
        return -1;
    }
    static const struct {
        const char *n;
        int64_t min, max;
    } ranges[] = {
        {"DelaySeconds", 0, 900},
        {"MaximumMessageSize", 1024, 1048576},
        {"MessageRetentionPeriod", 60, 1209600},
        {"ReceiveMessageWaitTimeSeconds", 0, 20},
        {"VisibilityTimeout", 0, 43200},
        {"KmsDataKeyReusePeriodSeconds", 60, 86400},
    };
    json_t *tmp = json_pack("{s:O}", "v", v);
    int rc = 0;
    for (size_t i = 0; i < ARRAY_SIZE(ranges); i++) {
        int64_t x;
        if (!strcmp(ranges[i].n, n) && sqs__in_int(tmp, "v", ranges[i].min, ranges[i].max, &x) != 1)
            rc = -1;
    }
    json_decref(tmp);
    const char *sv = json_string_value(v);
    if (rc == 0 && (!strcmp(n, "FifoQueue"))) {
        if (!creating || (strcmp(sv, "true") && strcmp(sv, "false")) ||
            (!fifo && !strcmp(sv, "true")))
            rc = -1;
    }
    if (rc == 0 &&
        (!strcmp(n, "ContentBasedDeduplication") || !strcmp(n, "DeduplicationScope") ||
         !strcmp(n, "FifoThroughputLimit")) &&
        !fifo) {
        sqs__fail(c, "InvalidAttributeName", "Unknown Attribute %s.", n);
        return -1;
    }
    if (rc == 0 && !strcmp(n, "RedrivePolicy") && *sv) {
        json_t *j = json_loads(sv, 0, NULL);
        int64_t mr;
        if (!json_is_object(j) || !sqs__in_str(j, "deadLetterTargetArn") ||
            sqs__in_int(j, "maxReceiveCount", 1, 1000, &mr) != 1)
            rc = -1;
        json_decref(j);
        if (rc < 0) {
            sqs__fail(
                c, "InvalidParameterValue",
                "Value %s for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a "
                "valid JSON map or is missing deadLetterTargetArn or maxReceiveCount.",
                sv);
            return -1;
        }
    }
    if (rc < 0) {
        sqs__fail(c, "InvalidAttributeValue", "Invalid value for the parameter %s.", n);
        return -1;
    }
    return 0;
}

static void queue_url(const struct nb_sqs *s, const struct nb_sqs_call *c, const char *name,
                      char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s", c->url_base, s->d->cfg.account_id, name);
}

static void queue_timer_closed(uv_handle_t *h)
{
    struct sqs_queue *q = h->data;
    json_decref(q->attrs);
    json_decref(q->tags);
    free(q->name);
    free(q->arn);
    free(q->dlq_arn);
    free(q->map);
    free(q->heap);
    for (size_t i = 0; i < q->n_dedups; i++)
        free(q->dedups[i].id);
    free(q->dedups);
    free(q);
}

static struct sqs_queue *queue_new(struct nb_sqs *s, const char *name)
{
    struct sqs_queue *q = xcalloc(1, sizeof(*q));
    q->s = s;
    q->name = xstrdup(name);
    q->arn = xasprintf("arn:aws:sqs:%s:%s:%s", s->d->cfg.region, s->d->cfg.account_id, name);
    size_t nl = strlen(name);
    q->fifo = nl > 5 && !strcmp(name + nl - 5, ".fifo");
    q->attrs = json_object();
    q->tags = json_object();
    q->next_seq = now_ms() * 1000;
    uv_timer_init(s->d->loop, &q->timer);
    q->timer.data = q;
    if (s->n_queues == s->cap_queues) {
        s->cap_queues = s->cap_queues ? 2 * s->cap_queues : 16;
        s->queues = xrealloc(s->queues, s->cap_queues * sizeof(*s->queues));
    }
    s->queues[s->n_queues++] = q;
    return q;
}

/* Unlinks q from the service, answers its long polls empty, frees its messages. */
static void queue_drop(struct nb_sqs *s, struct sqs_queue *q)
{
    for (size_t i = 0; i < s->n_queues; i++)
        if (s->queues[i] == q) {
            s->queues[i] = s->queues[--s->n_queues];
            break;
        }
    q->deleted = true;
    while (q->waiters) {
        struct nb_sqs_call *c = q->waiters;
        q->waiters = c->wnext;
        c->wq = NULL;
        sqs__reply_receive(c, json_array());
    }
    for (size_t i = 0; i < q->map_cap; i++)
        if (q->map[i]) {
            struct sqs_msg *m = q->map[i];
            sqs__group_unlink(q, m);
            sqs__msg_free(m);
        }
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, queue_timer_closed);
}

/* Queue from the call's QueueUrl (its last path segment); fails c when absent or unknown. */
struct sqs_queue *sqs__call_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    const char *url = sqs__in_str(c->in, "QueueUrl");
    if (!url) {
        sqs__fail(c, "MissingParameter", "The request must contain the parameter QueueUrl.");
        return NULL;
    }
    const char *slash = strrchr(url, '/');
    struct sqs_queue *q = sqs__queue_find(s, slash ? slash + 1 : url);
    if (!q)
        sqs__fail(c, "AWS.SimpleQueueService.NonExistentQueue",
                  "The specified queue does not exist.");
    return q;
}

void sqs_call_resource(struct nb_sqs *s, const struct nb_sqs_call *c, char *buf, size_t len)
{
    const char *url = sqs__in_str(c->in, "QueueUrl");
    const char *name = sqs__in_str(c->in, "QueueName");
    if (url) {
        const char *slash = strrchr(url, '/');
        name = slash ? slash + 1 : url;
    }
    if (name)
        snprintf(buf, len, "arn:aws:sqs:%s:%s:%s", s->d->cfg.region, s->d->cfg.account_id, name);
    else
        snprintf(buf, len, "*");
}

/* ---- long polls ------------------------------------------------------------------------- */

void sqs__reply_receive(struct nb_sqs_call *c, json_t *msgs)
{
    json_t *out = json_object();
    if (json_array_size(msgs))
        json_object_set(out, "Messages", msgs);
    json_decref(msgs);
    sqs__ok(c, out);
}

/* Serves held long polls from what is visible now; answers expired ones empty. */
void sqs__kick(struct sqs_queue *q)
{
    int64_t now = (int64_t)now_ms();
    struct nb_sqs_call **pp = &q->waiters;
    while (*pp) {
        struct nb_sqs_call *c = *pp;
        json_t *msgs = sqs__take(q, c->in, c->max, c->vis);
        if (json_array_size(msgs) || now >= c->deadline_ms) {
            *pp = c->wnext;
            c->wq = NULL;
            sqs__reply_receive(c, msgs);
            continue;
        }
        json_decref(msgs);
        pp = &c->wnext;
    }
    if (q->watch) {
        sqs__promote(q, now);
        if (q->ready_n)
            q->watch(q->watch_data, q->arn);
    }
    sqs__arm_timer(q);
}

static void on_queue_timer(uv_timer_t *t)
{
    sqs__kick(t->data);
}

void sqs__arm_timer(struct sqs_queue *q)
{
    int64_t due = INT64_MAX;
    for (struct nb_sqs_call *c = q->waiters; c; c = c->wnext)
        if (c->deadline_ms < due)
            due = c->deadline_ms;
    if ((q->waiters || q->watch) && q->heap_n && q->heap[0]->visible_ms < due)
        due = q->heap[0]->visible_ms;
    if (due == INT64_MAX) {
        uv_timer_stop(&q->timer);
        return;
    }
    int64_t now = (int64_t)now_ms();
    uv_timer_start(&q->timer, on_queue_timer, due > now ? (uint64_t)(due - now) : 0, 0);
}

void sqs_call_abort(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = c->wq;
    if (!q)
        return;
    for (struct nb_sqs_call **pp = &q->waiters; *pp; pp = &(*pp)->wnext)
        if (*pp == c) {
            *pp = c->wnext;
            break;
        }
    c->wq = NULL;
    sqs__reply_receive(c, json_array());
    sqs__arm_timer(q);
}

/* ---- receive ---------------------------------------------------------------------------- */

static bool wants(json_t *names, const char *n)
{
    size_t i;
    json_t *v;
    json_array_foreach (names, i, v) {
        const char *w = json_string_value(v);
        if (!w)
            continue;
        if (!strcmp(w, "All") || !strcmp(w, ".*") || !strcmp(w, n))
            return true;
        size_t wl = strlen(w);
        if (wl >= 2 && !strcmp(w + wl - 2, ".*") && !strncmp(w, n, wl - 1))
            return true;
    }
    return false;
}

static json_t *render_msg(struct sqs_queue *q, struct sqs_msg *m, json_t *in)
{
    char rh[64];
    snprintf(rh, sizeof(rh), "%016" PRIx64 "-%016" PRIx64, m->seq, m->nonce);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "MessageId", m->id, "ReceiptHandle", rh,
                          "MD5OfBody", m->md5_body, "Body", m->body);
    json_t *sysn = json_object_get(in, "AttributeNames");
    json_t *sysn2 = json_object_get(in, "MessageSystemAttributeNames");
    json_t *a = json_object();
    char v[32];
#define SYS(name, valexpr)                                                                         \
    do {                                                                                           \
        if (wants(sysn, name) || wants(sysn2, name))                                               \
            json_object_set_new(a, name, json_string(valexpr));                                    \
    } while (0)
    SYS("SenderId", q->s->d->cfg.account_id);
    snprintf(v, sizeof(v), "%" PRId64, m->sent_ms);
    SYS("SentTimestamp", v);
    snprintf(v, sizeof(v), "%" PRId64, m->receive_count);
    SYS("ApproximateReceiveCount", v);
    snprintf(v, sizeof(v), "%" PRId64, m->first_receive_ms);
    SYS("ApproximateFirstReceiveTimestamp", v);
    if (q->fifo) {
        snprintf(v, sizeof(v), "%020" PRIu64, m->seq);
        SYS("SequenceNumber", v);
        if (m->group)
            SYS("MessageGroupId", m->group);
        if (m->dedup)
            SYS("MessageDeduplicationId", m->dedup);
    }
    const char *k;
    json_t *sv;
    json_object_foreach (m->sys, k, sv)
        if (json_is_string(sv))
            SYS(k, json_string_value(sv));
#undef SYS
    if (json_object_size(a))
        json_object_set(o, "Attributes", a);
    json_decref(a);
    json_t *names = json_object_get(in, "MessageAttributeNames");
    if (m->attrs && json_array_size(names)) {
        json_t *ma = json_object();
        json_object_foreach (m->attrs, k, sv)
            if (wants(names, k))
                json_object_set(ma, k, sv);
        if (json_object_size(ma)) {
            char md5[33];
            sqs_md5_attrs(ma, md5, NULL);
            json_object_set_new(o, "MD5OfMessageAttributes", json_string(md5));
            json_object_set(o, "MessageAttributes", ma);
        }
        json_decref(ma);
    }
    return o;
}

static bool expired(const struct sqs_queue *q, const struct sqs_msg *m, int64_t now)
{
    return m->sent_ms + q->retention * 1000 <= now;
}

static void dead_letter(struct sqs_queue *q, struct sqs_queue *dlq, struct sqs_msg *m,
                        struct pend *bg, int64_t now)
{
    sqs__index_remove(q, m);
    sqs__rec_del_msg(bg, q, m->seq);
    m->seq = dlq->next_seq++;
    m->receive_count = 0;
    m->first_receive_ms = 0;
    m->visible_ms = now;
    if (!m->sys)
        m->sys = json_object();
    json_object_set_new(m->sys, "DeadLetterQueueSourceArn", json_string(q->arn));
    if (!dlq->fifo) {
        free(m->group);
        m->group = NULL;
    }
    sqs__rec_put_msg(bg, dlq, m);
    sqs__index_add(dlq, m, now);
}

/* Takes m for a receive: bumps its count, hides it for vis seconds. */
static json_t *deliver(struct sqs_queue *q, struct sqs_msg *m, json_t *in, int64_t vis,
                       struct pend *bg, int64_t now)
{
    sqs__ready_remove(q, m);
    m->receive_count++;
    if (!m->first_receive_ms)
        m->first_receive_ms = now;
    m->visible_ms = now + vis * 1000;
    uv_random(NULL, NULL, &m->nonce, sizeof(m->nonce), 0, NULL);
    sqs__heap_push(q, m);
    sqs__rec_upd_msg(bg, q, m);
    return render_msg(q, m, in);
}

/* Handles expiry and redrive of a visible m before delivery; true when m is gone. */
static bool drop_or_redrive(struct sqs_queue *q, struct sqs_msg *m, struct pend *bg, int64_t now,
                            bool *dlq_kick)
{
    if (expired(q, m, now)) {
        sqs__index_remove(q, m);
        sqs__rec_del_msg(bg, q, m->seq);
        sqs__msg_free(m);
        return true;
    }
    if (q->max_receive && m->receive_count >= q->max_receive) {
        struct sqs_queue *dlq = sqs__queue_by_arn(q->s, q->dlq_arn);
        if (dlq && dlq != q) {
            dead_letter(q, dlq, m, bg, now);
            *dlq_kick = true;
            return true;
        }
    }
    return false;
}

json_t *sqs__take(struct sqs_queue *q, json_t *in, int max, int64_t vis)
{
    int64_t now = (int64_t)now_ms();
    sqs__promote(q, now);
    json_t *out = json_array();
    struct pend *bg = NULL;
    bool dlq_kick = false;
    if (!q->fifo) {
        while (q->ready_head && (int)json_array_size(out) < max) {
            struct sqs_msg *m = q->ready_head;
            if (drop_or_redrive(q, m, bg_pend(q->s, &bg), now, &dlq_kick))
                continue;
            json_array_append_new(out, deliver(q, m, in, vis, bg, now));
        }
    } else {
        struct sqs_group *g = q->groups;
        while (g && (int)json_array_size(out) < max) {
            struct sqs_group *gnext = g->next;
            struct sqs_msg *m = g->head;
            while (m && m->heap_idx == SIZE_MAX && (int)json_array_size(out) < max) {
                struct sqs_msg *mn = m->gnext;
                bool was_last = !mn;
                if (!drop_or_redrive(q, m, bg_pend(q->s, &bg), now, &dlq_kick))
                    json_array_append_new(out, deliver(q, m, in, vis, bg, now));
                else if (was_last)
                    break; /* the group may be freed */
                m = mn;
            }
            g = gnext;
        }
    }
    bg_submit(bg);
    if (dlq_kick) {
        struct sqs_queue *dlq = sqs__queue_by_arn(q->s, q->dlq_arn);
        if (dlq && dlq->waiters)
            sqs__kick(dlq);
    }
    return out;
}

/* ---- operations ------------------------------------------------------------------------- */

static bool valid_queue_name(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > 80)
        return false;
    size_t base = l > 5 && !strcmp(n + l - 5, ".fifo") ? l - 5 : l;
    for (size_t i = 0; i < base; i++)
        if (!(isalnum((unsigned char)n[i]) || n[i] == '-' || n[i] == '_'))
            return false;
    return true;
}

static json_t *in_tags(json_t *in)
{
    json_t *t = json_object_get(in, "Tags");
    return t ? t : json_object_get(in, "tags");
}

static void op_create_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    const char *name = sqs__in_str(c->in, "QueueName");
    if (!name)
        FAIL(c, "MissingParameter", "The request must contain the parameter QueueName.");
    if (!valid_queue_name(name))
        FAIL(c, "InvalidParameterValue",
             "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 "
             "in length");
    size_t nl = strlen(name);
    bool fifo = nl > 5 && !strcmp(name + nl - 5, ".fifo");
    json_t *attrs = json_object_get(c->in, "Attributes");
    if (attrs && !json_is_object(attrs))
        FAIL(c, "InvalidParameterValue", "Attributes must be a map");
    const char *k;
    json_t *v;
    json_object_foreach (attrs, k, v)
        if (check_attr(c, fifo, true, k, v) < 0)
            return;
    if (!fifo && attrs && sqs__truthy(json_object_get(attrs, "FifoQueue")))
        FAIL(c, "InvalidParameterValue",
             "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
             "or underscores, must end with .fifo suffix and be 1 to 80 in length.");
    if (fifo && !sqs__truthy(json_object_get(attrs, "FifoQueue")))
        FAIL(c, "InvalidParameterValue",
             "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
             "or underscores, must end with .fifo suffix and be 1 to 80 in length.");
    char url[512];
    queue_url(s, c, name, url, sizeof(url));
    struct sqs_queue *q = sqs__queue_find(s, name);
    if (q) {
        json_object_foreach (attrs, k, v) {
            json_t *cur = json_object_get(q->attrs, k);
            if (!cur || strcmp(json_string_value(cur), json_string_value(v)))
                FAIL(c, "QueueAlreadyExists",
                     "A queue already exists with the same name and a different value for "
                     "attribute %s",
                     k);
        }
        OK(c, json_pack("{s:s}", "QueueUrl", url));
    }
    q = queue_new(s, name);
    if (attrs)
        json_object_update(q->attrs, attrs);
    json_t *tags = in_tags(c->in);
    if (json_is_object(tags))
        json_object_update(q->tags, tags);
    q->created_s = q->modified_s = (int64_t)(now_ms() / 1000);
    queue_parse(q);
    struct pend *p = sqs__pend_new(s, c);
    rec_put_queue(p, q);
    p->out = json_pack("{s:s}", "QueueUrl", url);
    sqs__pend_submit(p);
}

static void op_get_queue_url(struct nb_sqs *s, struct nb_sqs_call *c)
{
    const char *name = sqs__in_str(c->in, "QueueName");
    if (!name)
        FAIL(c, "MissingParameter", "The request must contain the parameter QueueName.");
    if (!sqs__queue_find(s, name))
        FAIL(c, "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.");
    char url[512];
    queue_url(s, c, name, url, sizeof(url));
    sqs__ok(c, json_pack("{s:s}", "QueueUrl", url));
}

static int cmp_queue(const void *a, const void *b)
{
    return strcmp((*(struct sqs_queue *const *)a)->name, (*(struct sqs_queue *const *)b)->name);
}

static void op_list_queues(struct nb_sqs *s, struct nb_sqs_call *c)
{
    const char *prefix = sqs__in_str(c->in, "QueueNamePrefix");
    const char *token = sqs__in_str(c->in, "NextToken");
    int64_t max = 1000;
    int has_max = sqs__in_int(c->in, "MaxResults", 1, 1000, &max);
    if (has_max < 0)
        FAIL(c, "InvalidParameterValue",
             "Value for parameter MaxResults is invalid. Reason: MaxResults must be an "
             "integer between 1 and 1000.");
    if (s->n_queues) /* no queue yet: s->queues may be NULL, which qsort must not get */
        qsort(s->queues, s->n_queues, sizeof(*s->queues), cmp_queue);
    json_t *urls = json_array();
    const char *last = NULL;
    size_t i = 0;
    for (; i < s->n_queues; i++) {
        struct sqs_queue *q = s->queues[i];
        if (prefix && strncmp(q->name, prefix, strlen(prefix)))
            continue;
        if (token && *token && strcmp(q->name, token) <= 0)
            continue;
        if ((int64_t)json_array_size(urls) == max)
            break;
        char url[512];
        queue_url(s, c, q->name, url, sizeof(url));
        json_array_append_new(urls, json_string(url));
        last = q->name;
    }
    json_t *out = json_object();
    if (json_array_size(urls))
        json_object_set(out, "QueueUrls", urls);
    json_decref(urls);
    bool more = false;
    for (; i < s->n_queues && has_max == 1; i++)
        if (!prefix || !strncmp(s->queues[i]->name, prefix, strlen(prefix)))
            more = true;
    if (more && last)
        json_object_set_new(out, "NextToken", json_string(last));
    sqs__ok(c, out);
}

static void op_get_queue_attributes(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    json_t *names = json_object_get(c->in, "AttributeNames");
    size_t i;
    json_t *v;
    json_array_foreach (names, i, v) {
        const char *n = json_string_value(v);
        bool known = n && (!strcmp(n, "All") || is_settable(n));
        for (size_t j = 0; n && j < ARRAY_SIZE(ro_attr_names); j++)
            known = known || !strcmp(ro_attr_names[j], n);
        if (!known)
            FAIL(c, "InvalidAttributeName", "Unknown Attribute %s.", n ? n : "");
    }
    int64_t now = (int64_t)now_ms();
    sqs__promote(q, now);
    size_t inflight = 0, delayed = 0;
    for (i = 0; i < q->heap_n; i++)
        if (q->heap[i]->receive_count)
            inflight++;
        else
            delayed++;
    json_t *a = json_object();
    char buf[64];
#define PUT(n, val)                                                                                \
    do {                                                                                           \
        if (wants(names, n))                                                                       \
            json_object_set_new(a, n, json_string(val));                                           \
    } while (0)
    PUT("QueueArn", q->arn);
    snprintf(buf, sizeof(buf), "%zu", q->ready_n);
    PUT("ApproximateNumberOfMessages", buf);
    snprintf(buf, sizeof(buf), "%zu", inflight);
    PUT("ApproximateNumberOfMessagesNotVisible", buf);
    snprintf(buf, sizeof(buf), "%zu", delayed);
    PUT("ApproximateNumberOfMessagesDelayed", buf);
    snprintf(buf, sizeof(buf), "%" PRId64, q->created_s);
    PUT("CreatedTimestamp", buf);
    snprintf(buf, sizeof(buf), "%" PRId64, q->modified_s);
    PUT("LastModifiedTimestamp", buf);
    snprintf(buf, sizeof(buf), "%" PRId64, q->visibility);
    PUT("VisibilityTimeout", buf);
    snprintf(buf, sizeof(buf), "%" PRId64, q->delay);
    PUT("DelaySeconds", buf);
    snprintf(buf, sizeof(buf), "%" PRId64, q->retention);
    PUT("MessageRetentionPeriod", buf);
    snprintf(buf, sizeof(buf), "%" PRId64, q->max_size);
    PUT("MaximumMessageSize", buf);
    snprintf(buf, sizeof(buf), "%" PRId64, q->wait);
    PUT("ReceiveMessageWaitTimeSeconds", buf);
    PUT("SqsManagedSseEnabled", "false");
    if (q->fifo) {
        PUT("FifoQueue", "true");
        PUT("ContentBasedDeduplication", q->content_dedup ? "true" : "false");
        PUT("DeduplicationScope", "queue");
        PUT("FifoThroughputLimit", "perQueue");
    }
#undef PUT
    const char *k;
    json_object_foreach (q->attrs, k, v) {
        if (wants(names, k) && !json_object_get(a, k) && json_string_length(v))
            json_object_set(a, k, v);
    }
    json_t *out = json_object();
    if (json_object_size(a))
        json_object_set(out, "Attributes", a);
    json_decref(a);
    sqs__ok(c, out);
}

static void op_set_queue_attributes(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    json_t *attrs = json_object_get(c->in, "Attributes");
    if (!json_is_object(attrs))
        FAIL(c, "MissingParameter", "The request must contain the parameter Attribute.Name.");
    const char *k;
    json_t *v;
    json_object_foreach (attrs, k, v) {
        if (!strcmp(k, "FifoQueue") && q->fifo && sqs__truthy(v))
            continue;
        if (check_attr(c, q->fifo, false, k, v) < 0)
            return;
    }
    json_object_update(q->attrs, attrs);
    q->modified_s = (int64_t)(now_ms() / 1000);
    queue_parse(q);
    struct pend *p = sqs__pend_new(s, c);
    rec_put_queue(p, q);
    p->out = json_object();
    sqs__pend_submit(p);
    sqs__kick(q); /* a shorter wait or a redrive may change who gets what */
}

static void op_delete_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    struct pend *p = sqs__pend_new(s, c);
    pend_rec(p, NB_SQS_PURGE, q->name);
    pend_rec(p, NB_SQS_DEL_QUEUE, q->name);
    p->out = json_object();
    queue_drop(s, q);
    sqs__pend_submit(p);
}

static void op_purge_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    for (size_t i = 0; i < q->map_cap; i++)
        if (q->map[i]) {
            struct sqs_msg *m = q->map[i];
            sqs__group_unlink(q, m);
            sqs__msg_free(m);
        }
    free(q->map);
    q->map = NULL;
    q->map_cap = q->map_n = 0;
    q->heap_n = 0;
    q->ready_head = q->ready_tail = NULL;
    q->ready_n = 0;
    struct pend *p = sqs__pend_new(s, c);
    pend_rec(p, NB_SQS_PURGE, q->name);
    p->out = json_object();
    sqs__pend_submit(p);
}

static void op_tag_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    json_t *tags = json_object_get(c->in, "Tags");
    if (!json_is_object(tags))
        FAIL(c, "MissingParameter", "The request must contain the parameter Tags.");
    json_object_update(q->tags, tags);
    struct pend *p = sqs__pend_new(s, c);
    rec_put_queue(p, q);
    p->out = json_object();
    sqs__pend_submit(p);
}

static void op_untag_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    json_t *keys = json_object_get(c->in, "TagKeys");
    if (!json_is_array(keys))
        FAIL(c, "MissingParameter", "The request must contain the parameter TagKeys.");
    size_t i;
    json_t *v;
    json_array_foreach (keys, i, v)
        if (json_is_string(v))
            json_object_del(q->tags, json_string_value(v));
    struct pend *p = sqs__pend_new(s, c);
    rec_put_queue(p, q);
    p->out = json_object();
    sqs__pend_submit(p);
}

static void op_list_queue_tags(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    json_t *out = json_object();
    if (json_object_size(q->tags))
        json_object_set(out, "Tags", q->tags);
    sqs__ok(c, out);
}

/* -- send -- */

static const struct {
    const char *name;
    void (*fn)(struct nb_sqs *s, struct nb_sqs_call *c);
} ops[] = {
    {"CreateQueue", op_create_queue},
    {"DeleteQueue", op_delete_queue},
    {"ListQueues", op_list_queues},
    {"GetQueueUrl", op_get_queue_url},
    {"GetQueueAttributes", op_get_queue_attributes},
    {"SetQueueAttributes", op_set_queue_attributes},
    {"SendMessage", sqs__op_send_message},
    {"SendMessageBatch", sqs__op_send_message_batch},
    {"ReceiveMessage", sqs__op_receive_message},
    {"DeleteMessage", sqs__op_delete_message},
    {"DeleteMessageBatch", sqs__op_delete_message_batch},
    {"ChangeMessageVisibility", sqs__op_change_visibility},
    {"ChangeMessageVisibilityBatch", sqs__op_change_visibility_batch},
    {"PurgeQueue", op_purge_queue},
    {"TagQueue", op_tag_queue},
    {"UntagQueue", op_untag_queue},
    {"ListQueueTags", op_list_queue_tags},
};

bool sqs_known_op(const char *op)
{
    for (size_t i = 0; op && i < ARRAY_SIZE(ops); i++)
        if (!strcmp(ops[i].name, op))
            return true;
    return false;
}

void sqs_call(struct nb_sqs *s, struct nb_sqs_call *c)
{
    c->wq = NULL;
    c->wnext = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
        if (!strcmp(ops[i].name, c->op)) {
            ops[i].fn(s, c);
            return;
        }
    sqs__fail(c, "InvalidAction", "The action %s is not valid for this endpoint.", c->op);
}

/* ---- start-up ---------------------------------------------------------------------------- */

static void load_queue(void *data, const char *name, const char *doc)
{
    struct nb_sqs *s = data;
    json_t *j = json_loads(doc, 0, NULL);
    if (!json_is_object(j)) {
        log_err("skipping unreadable queue record name=%s", name);
        json_decref(j);
        return;
    }
    struct sqs_queue *q = queue_new(s, name);
    json_t *a = json_object_get(j, "attrs"), *t = json_object_get(j, "tags");
    if (json_is_object(a))
        json_object_update(q->attrs, a);
    if (json_is_object(t))
        json_object_update(q->tags, t);
    q->created_s = json_integer_value(json_object_get(j, "created"));
    q->modified_s = json_integer_value(json_object_get(j, "modified"));
    queue_parse(q);
    json_decref(j);
}

static void load_msg(void *data, const struct nb_sqs_rec *r)
{
    struct nb_sqs *s = data;
    struct sqs_queue *q = sqs__queue_find(s, r->queue);
    json_t *j = json_loads(r->doc, 0, NULL);
    const char *id = sqs__in_str(j, "id"), *body = sqs__in_str(j, "body");
    if (!q || !id || !body || strlen(id) != 36) {
        log_err("skipping unreadable message queue=%s seq=%" PRIu64, r->queue, r->seq);
        json_decref(j);
        return;
    }
    struct sqs_msg *m = xcalloc(1, sizeof(*m));
    memcpy(m->id, id, 37);
    m->body = xstrdup(body);
    sqs_md5_hex(body, strlen(body), m->md5_body);
    json_t *a = json_object_get(j, "attrs");
    if (json_is_object(a)) {
        m->attrs = json_incref(a);
        sqs_md5_attrs(m->attrs, m->md5_attrs, NULL);
    }
    json_t *sys = json_object_get(j, "sys");
    if (json_is_object(sys))
        m->sys = json_incref(sys);
    if (sqs__in_str(j, "group"))
        m->group = xstrdup(sqs__in_str(j, "group"));
    if (sqs__in_str(j, "dedup"))
        m->dedup = xstrdup(sqs__in_str(j, "dedup"));
    m->sent_ms = json_integer_value(json_object_get(j, "sent"));
    m->seq = r->seq;
    m->visible_ms = r->visible_ms;
    m->receive_count = r->receive_count;
    m->first_receive_ms = r->first_receive_ms;
    m->heap_idx = SIZE_MAX;
    uv_random(NULL, NULL, &m->nonce, sizeof(m->nonce), 0, NULL);
    json_decref(j);
    if (m->seq >= q->next_seq)
        q->next_seq = m->seq + 1;
    /* the dedup window of messages still stored survives a restart */
    if (q->fifo && m->dedup && m->sent_ms + DEDUP_WINDOW_MS > (int64_t)now_ms())
        sqs__dedup_add(q, m, m->sent_ms);
    sqs__index_add(q, m, (int64_t)now_ms());
}

struct nb_sqs *sqs_open(struct nb_daemon *d, struct nb_err *err)
{
    struct nb_store *st = store_sqs_open(d->cfg.data_dir, err);
    if (!st)
        return NULL;
    struct nb_sqs *s = xcalloc(1, sizeof(*s));
    s->d = d;
    s->st = st;
    if (store_sqs_load(st, load_queue, load_msg, s, err) < 0) {
        sqs_close(s);
        return NULL;
    }
    s->cq = commit_queue_new(d->loop, write_batch, s);
    size_t n = 0;
    for (size_t i = 0; i < s->n_queues; i++)
        n += s->queues[i]->map_n;
    log_info("sqs loaded queues=%zu messages=%zu", s->n_queues, n);
    return s;
}

void sqs_close(struct nb_sqs *s)
{
    if (!s)
        return;
    while (s->n_queues) {
        struct sqs_queue *q = s->queues[0];
        queue_drop(s, q);
    }
    commit_queue_close(s->cq); /* writes what is queued, runs callbacks */
    free(s->queues);
    store_close(s->st);
    free(s);
}
