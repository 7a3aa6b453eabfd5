/*
 * sqs.c - the queue service (see sqs.h): queues, the per-queue message index, operations, long
 * polls, and the hand-off of every change to the commit queue.
 *
 * Index per queue: every message is in map (seq -> message) and in exactly one of `ready` (a
 * doubly linked list, visible now) or `heap` (a min-heap by visible_ms: delayed or in flight).
 * FIFO queues also chain each message into its group's list in send order; a group delivers
 * only from its head run of visible messages, so a later message of a group never overtakes an
 * earlier one that is in flight. Promotion from heap to ready happens lazily whenever the queue
 * is read, and a per-queue timer wakes held long polls at the earliest of their deadlines and the
 * heap's next visibility. Retention is enforced lazily too: an expired message is dropped when a
 * receive meets it or the index is rebuilt.
 * Durability: sends and deletes reply from the commit callback; a message enters the index only
 * after its send is durable. Loop thread only.
 */
#include "sqs.h"

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

#define DEDUP_WINDOW_MS (5 * 60 * 1000)
#define MAX_BATCH 10

struct sqs_msg {
    uint64_t seq;
    char id[37];
    char *body;
    json_t *attrs; /* MessageAttributes, or NULL */
    json_t *sys;   /* extra system attributes (AWSTraceHeader, DeadLetterQueueSourceArn, ...) */
    char md5_body[33], md5_attrs[33];
    char *group, *dedup;
    int64_t sent_ms, visible_ms, first_receive_ms, receive_count;
    uint64_t nonce;
    size_t heap_idx;               /* SIZE_MAX while in ready */
    struct sqs_msg *prev, *next;   /* ready list */
    struct sqs_msg *gprev, *gnext; /* FIFO group list */
    struct sqs_group *grp;
};

struct sqs_group {
    char *id;
    struct sqs_msg *head, *tail;
    struct sqs_group *next;
};

struct dedup {
    char *id;
    int64_t expires_ms;
    char msg_id[37];
    uint64_t seq;
};

struct sqs_queue {
    struct nb_sqs *s;
    char *name, *arn;
    bool fifo;
    json_t *attrs; /* settable attributes as strings */
    json_t *tags;
    int64_t created_s, modified_s;
    /* parsed */
    int64_t visibility, delay, retention, max_size, wait, max_receive;
    char *dlq_arn;
    bool content_dedup;
    /* index */
    struct sqs_msg **map;
    size_t map_cap, map_n;
    struct sqs_msg *ready_head, *ready_tail;
    size_t ready_n;
    struct sqs_msg **heap;
    size_t heap_n, heap_cap;
    struct sqs_group *groups;
    struct dedup *dedups;
    size_t n_dedups, cap_dedups;
    uint64_t next_seq;
    struct nb_sqs_call *waiters;
    nb_sqs_watch_cb watch;
    void *watch_data;
    uv_timer_t timer;
    bool deleted;
};

struct nb_sqs {
    struct nb_daemon *d;
    struct nb_store *st;
    struct nb_commit_queue *cq;
    struct sqs_queue **queues;
    size_t n_queues, cap_queues;
};

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

static void fail(struct nb_sqs_call *c, const char *code, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void fail(struct nb_sqs_call *c, const char *code, const char *fmt, ...)
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

static void ok(struct nb_sqs_call *c, json_t *out)
{
    c->reply(c, out, NULL);
    json_decref(out);
}

/* Fail or answer, and leave the (void) operation. */
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fail(__VA_ARGS__);                                                                         \
        return;                                                                                    \
    } while (0)
#define OK(c, out)                                                                                 \
    do {                                                                                           \
        ok(c, out);                                                                                \
        return;                                                                                    \
    } while (0)

/* ---- input helpers ----------------------------------------------------------------------- */

static const char *in_str(json_t *in, const char *name)
{
    return json_string_value(json_object_get(in, name));
}

/* 1 when present and valid into *v, 0 when absent, -1 when invalid. */
static int in_int(json_t *in, const char *name, int64_t min, int64_t max, int64_t *v)
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

static bool truthy(json_t *j)
{
    return json_is_true(j) || (json_is_string(j) && !strcasecmp(json_string_value(j), "true"));
}

/* ---- message map (open addressing, seq -> msg) ------------------------------------------- */

static size_t slot_of(uint64_t seq, size_t cap)
{
    return (size_t)((seq * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static void map_put(struct sqs_queue *q, struct sqs_msg *m);

static void map_grow(struct sqs_queue *q)
{
    struct sqs_msg **old = q->map;
    size_t oldcap = q->map_cap;
    q->map_cap = oldcap ? oldcap * 2 : 64;
    q->map = xcalloc(q->map_cap, sizeof(*q->map));
    q->map_n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            map_put(q, old[i]);
    free(old);
}

static void map_put(struct sqs_queue *q, struct sqs_msg *m)
{
    if ((q->map_n + 1) * 2 > q->map_cap)
        map_grow(q);
    size_t i = slot_of(m->seq, q->map_cap);
    while (q->map[i])
        i = (i + 1) & (q->map_cap - 1);
    q->map[i] = m;
    q->map_n++;
}

static struct sqs_msg *map_get(struct sqs_queue *q, uint64_t seq)
{
    if (!q->map_cap)
        return NULL;
    for (size_t i = slot_of(seq, q->map_cap); q->map[i]; i = (i + 1) & (q->map_cap - 1))
        if (q->map[i]->seq == seq)
            return q->map[i];
    return NULL;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void map_del(struct sqs_queue *q, uint64_t seq)
{
    size_t mask = q->map_cap - 1, i = slot_of(seq, q->map_cap);
    while (q->map[i] && q->map[i]->seq != seq)
        i = (i + 1) & mask;
    if (!q->map[i])
        return;
    q->map[i] = NULL;
    q->map_n--;
    for (size_t j = (i + 1) & mask; q->map[j]; j = (j + 1) & mask) {
        size_t home = slot_of(q->map[j]->seq, q->map_cap);
        /* move j back to i when its home is not in (i, j] cyclically */
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            q->map[i] = q->map[j];
            q->map[j] = NULL;
            i = j;
        }
    }
}

/* ---- heap of invisible messages -------------------------------------------------------- */

static void heap_swap(struct sqs_queue *q, size_t a, size_t b)
{
    struct sqs_msg *t = q->heap[a];
    q->heap[a] = q->heap[b];
    q->heap[b] = t;
    q->heap[a]->heap_idx = a;
    q->heap[b]->heap_idx = b;
}

static void heap_up(struct sqs_queue *q, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (q->heap[p]->visible_ms <= q->heap[i]->visible_ms)
            break;
        heap_swap(q, i, p);
        i = p;
    }
}

static void heap_down(struct sqs_queue *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->heap_n && q->heap[l]->visible_ms < q->heap[m]->visible_ms)
            m = l;
        if (r < q->heap_n && q->heap[r]->visible_ms < q->heap[m]->visible_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(q, i, m);
        i = m;
    }
}

static void heap_push(struct sqs_queue *q, struct sqs_msg *m)
{
    if (q->heap_n == q->heap_cap) {
        q->heap_cap = q->heap_cap ? 2 * q->heap_cap : 64;
        q->heap = xrealloc(q->heap, q->heap_cap * sizeof(*q->heap));
    }
    m->heap_idx = q->heap_n;
    q->heap[q->heap_n++] = m;
    heap_up(q, m->heap_idx);
}

static void heap_remove(struct sqs_queue *q, struct sqs_msg *m)
{
    size_t i = m->heap_idx;
    ASSERT(i < q->heap_n && q->heap[i] == m);
    q->heap_n--;
    if (i != q->heap_n) {
        q->heap[i] = q->heap[q->heap_n];
        q->heap[i]->heap_idx = i;
        heap_down(q, i);
        heap_up(q, i);
    }
    m->heap_idx = SIZE_MAX;
}

/* ---- ready list, groups ------------------------------------------------------------------ */

static void ready_append(struct sqs_queue *q, struct sqs_msg *m)
{
    m->heap_idx = SIZE_MAX;
    m->next = NULL;
    m->prev = q->ready_tail;
    if (q->ready_tail)
        q->ready_tail->next = m;
    else
        q->ready_head = m;
    q->ready_tail = m;
    q->ready_n++;
}

static void ready_remove(struct sqs_queue *q, struct sqs_msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        q->ready_head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        q->ready_tail = m->prev;
    m->prev = m->next = NULL;
    q->ready_n--;
}

static struct sqs_group *group_get(struct sqs_queue *q, const char *id)
{
    struct sqs_group **pp = &q->groups;
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->id, id))
            return *pp;
    struct sqs_group *g = xcalloc(1, sizeof(*g));
    g->id = xstrdup(id);
    *pp = g;
    return g;
}

static void group_unlink(struct sqs_queue *q, struct sqs_msg *m)
{
    struct sqs_group *g = m->grp;
    if (!g)
        return;
    if (m->gprev)
        m->gprev->gnext = m->gnext;
    else
        g->head = m->gnext;
    if (m->gnext)
        m->gnext->gprev = m->gprev;
    else
        g->tail = m->gprev;
    m->grp = NULL;
    if (!g->head) { /* drop the empty group */
        struct sqs_group **pp = &q->groups;
        while (*pp != g)
            pp = &(*pp)->next;
        *pp = g->next;
        free(g->id);
        free(g);
    }
}

static void msg_free(struct sqs_msg *m)
{
    if (!m)
        return;
    free(m->body);
    json_decref(m->attrs);
    json_decref(m->sys);
    free(m->group);
    free(m->dedup);
    free(m);
}

/* Inserts m (durable) into q's index. */
static void index_add(struct sqs_queue *q, struct sqs_msg *m, int64_t now)
{
    map_put(q, m);
    if (q->fifo && m->group) {
        struct sqs_group *g = group_get(q, m->group);
        /* messages arrive in seq order, except on load (also in order) */
        m->gprev = g->tail;
        m->gnext = NULL;
        if (g->tail)
            g->tail->gnext = m;
        else
            g->head = m;
        g->tail = m;
        m->grp = g;
    }
    if (m->visible_ms <= now)
        ready_append(q, m);
    else
        heap_push(q, m);
}

/* Removes m from q's index (does not free). */
static void index_remove(struct sqs_queue *q, struct sqs_msg *m)
{
    map_del(q, m->seq);
    if (m->heap_idx == SIZE_MAX)
        ready_remove(q, m);
    else
        heap_remove(q, m);
    group_unlink(q, m);
}

static void promote(struct sqs_queue *q, int64_t now)
{
    while (q->heap_n && q->heap[0]->visible_ms <= now) {
        struct sqs_msg *m = q->heap[0];
        heap_remove(q, m);
        ready_append(q, m);
    }
}

/* ---- durability ---------------------------------------------------------------------------- */

struct pend {
    struct nb_commit_op op;
    struct nb_sqs *s;
    struct nb_sqs_rec *recs;
    size_t n, cap;
    char **strs; /* owned strings the records point to */
    size_t n_strs;
    void (*then)(struct pend *p, int status, const struct nb_err *err);
    struct nb_sqs_call *call;
    json_t *out;
    struct sqs_msg **msgs; /* SendMessage(Batch): inserted when durable */
    size_t n_msgs;
    char *queue;
    /* internal API */
    nb_sqs_sent_cb sent_cb;
    nb_sqs_done_cb done_cb;
    void *cb_data;
};

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

static struct pend *pend_new(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct pend *p = xcalloc(1, sizeof(*p));
    p->s = s;
    p->call = c;
    return p;
}

static void pend_free(struct pend *p)
{
    for (size_t i = 0; i < p->n_strs; i++)
        free(p->strs[i]);
    free(p->strs);
    free(p->recs);
    for (size_t i = 0; i < p->n_msgs; i++)
        msg_free(p->msgs[i]);
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
            fail(p->call, "InternalError", "cannot store the change: %s", err ? err->msg : "");
        else
            ok(p->call, json_incref(p->out));
    }
    pend_free(p);
}

static void pend_submit(struct pend *p)
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

static void rec_put_msg(struct pend *p, const struct sqs_queue *q, const struct sqs_msg *m)
{
    struct nb_sqs_rec *r = pend_rec(p, NB_SQS_PUT_MSG, q->name);
    r->seq = m->seq;
    r->doc = pend_str(p, msg_doc(m));
    r->visible_ms = m->visible_ms;
    r->receive_count = m->receive_count;
    r->first_receive_ms = m->first_receive_ms;
}

static void rec_upd_msg(struct pend *p, const struct sqs_queue *q, const struct sqs_msg *m)
{
    struct nb_sqs_rec *r = pend_rec(p, NB_SQS_UPD_MSG, q->name);
    r->seq = m->seq;
    r->visible_ms = m->visible_ms;
    r->receive_count = m->receive_count;
    r->first_receive_ms = m->first_receive_ms;
}

static void rec_del_msg(struct pend *p, const struct sqs_queue *q, uint64_t seq)
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
        *bg = pend_new(s, NULL);
    return *bg;
}

static void bg_submit(struct pend *bg)
{
    if (bg && bg->n)
        pend_submit(bg);
    else if (bg)
        pend_free(bg);
}

/* ---- queues ------------------------------------------------------------------------------ */

static struct sqs_queue *queue_find(struct nb_sqs *s, const char *name)
{
    for (size_t i = 0; i < s->n_queues; i++)
        if (!strcmp(s->queues[i]->name, name))
            return s->queues[i];
    return NULL;
}

static struct sqs_queue *queue_by_arn(struct nb_sqs *s, const char *arn)
{
    const char *c = arn ? strrchr(arn, ':') : NULL;
    struct sqs_queue *q = c ? queue_find(s, c + 1) : NULL;
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
    return in_int(attrs, n, INT64_MIN, INT64_MAX, &v) == 1 ? v : dflt;
}

/* Parses q->attrs into the fast fields. */
static void queue_parse(struct sqs_queue *q)
{
    q->visibility = attr_i(q->attrs, "VisibilityTimeout", 30);
    q->delay = attr_i(q->attrs, "DelaySeconds", 0);
    q->retention = attr_i(q->attrs, "MessageRetentionPeriod", 345600);
    q->max_size = attr_i(q->attrs, "MaximumMessageSize", 262144);
    q->wait = attr_i(q->attrs, "ReceiveMessageWaitTimeSeconds", 0);
    q->content_dedup = truthy(json_object_get(q->attrs, "ContentBasedDeduplication"));
    free(q->dlq_arn);
    q->dlq_arn = NULL;
    q->max_receive = 0;
    const char *rp = in_str(q->attrs, "RedrivePolicy");
    if (rp && *rp) {
        json_t *j = json_loads(rp, 0, NULL);
        const char *t = in_str(j, "deadLetterTargetArn");
        int64_t mr;
        if (t && in_int(j, "maxReceiveCount", 1, 1000, &mr) == 1) {
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
        fail(c, "InvalidAttributeName", "Unknown Attribute %s.", n);
        return -1;
    }
    if (!json_is_string(v)) {
        fail(c, "InvalidAttributeValue", "Invalid value for the parameter %s.", n);
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
        if (!strcmp(ranges[i].n, n) && in_int(tmp, "v", ranges[i].min, ranges[i].max, &x) != 1)
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
        fail(c, "InvalidAttributeName", "Unknown Attribute %s.", n);
        return -1;
    }
    if (rc == 0 && !strcmp(n, "RedrivePolicy") && *sv) {
        json_t *j = json_loads(sv, 0, NULL);
        int64_t mr;
        if (!json_is_object(j) || !in_str(j, "deadLetterTargetArn") ||
            in_int(j, "maxReceiveCount", 1, 1000, &mr) != 1)
            rc = -1;
        json_decref(j);
        if (rc < 0) {
            fail(c, "InvalidParameterValue",
                 "Value %s for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a "
                 "valid JSON map or is missing deadLetterTargetArn or maxReceiveCount.",
                 sv);
            return -1;
        }
    }
    if (rc < 0) {
        fail(c, "InvalidAttributeValue", "Invalid value for the parameter %s.", n);
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

static void reply_receive(struct nb_sqs_call *c, json_t *msgs);

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
        reply_receive(c, json_array());
    }
    for (size_t i = 0; i < q->map_cap; i++)
        if (q->map[i]) {
            struct sqs_msg *m = q->map[i];
            group_unlink(q, m);
            msg_free(m);
        }
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, queue_timer_closed);
}

/* Queue from the call's QueueUrl (its last path segment); fails c when absent or unknown. */
static struct sqs_queue *call_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    const char *url = in_str(c->in, "QueueUrl");
    if (!url) {
        fail(c, "MissingParameter", "The request must contain the parameter QueueUrl.");
        return NULL;
    }
    const char *slash = strrchr(url, '/');
    struct sqs_queue *q = queue_find(s, slash ? slash + 1 : url);
    if (!q)
        fail(c, "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.");
    return q;
}

void sqs_call_resource(struct nb_sqs *s, const struct nb_sqs_call *c, char *buf, size_t len)
{
    const char *url = in_str(c->in, "QueueUrl");
    const char *name = in_str(c->in, "QueueName");
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

static void arm_timer(struct sqs_queue *q);
static json_t *take(struct sqs_queue *q, json_t *in, int max, int64_t vis);

static void reply_receive(struct nb_sqs_call *c, json_t *msgs)
{
    json_t *out = json_object();
    if (json_array_size(msgs))
        json_object_set(out, "Messages", msgs);
    json_decref(msgs);
    ok(c, out);
}

/* Serves held long polls from what is visible now; answers expired ones empty. */
static void kick(struct sqs_queue *q)
{
    int64_t now = (int64_t)now_ms();
    struct nb_sqs_call **pp = &q->waiters;
    while (*pp) {
        struct nb_sqs_call *c = *pp;
        json_t *msgs = take(q, c->in, c->max, c->vis);
        if (json_array_size(msgs) || now >= c->deadline_ms) {
            *pp = c->wnext;
            c->wq = NULL;
            reply_receive(c, msgs);
            continue;
        }
        json_decref(msgs);
        pp = &c->wnext;
    }
    if (q->watch) {
        promote(q, now);
        if (q->ready_n)
            q->watch(q->watch_data, q->arn);
    }
    arm_timer(q);
}

static void on_queue_timer(uv_timer_t *t)
{
    kick(t->data);
}

static void arm_timer(struct sqs_queue *q)
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
    reply_receive(c, json_array());
    arm_timer(q);
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
    index_remove(q, m);
    rec_del_msg(bg, q, m->seq);
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
    rec_put_msg(bg, dlq, m);
    index_add(dlq, m, now);
}

/* Takes m for a receive: bumps its count, hides it for vis seconds. */
static json_t *deliver(struct sqs_queue *q, struct sqs_msg *m, json_t *in, int64_t vis,
                       struct pend *bg, int64_t now)
{
    ready_remove(q, m);
    m->receive_count++;
    if (!m->first_receive_ms)
        m->first_receive_ms = now;
    m->visible_ms = now + vis * 1000;
    uv_random(NULL, NULL, &m->nonce, sizeof(m->nonce), 0, NULL);
    heap_push(q, m);
    rec_upd_msg(bg, q, m);
    return render_msg(q, m, in);
}

/* Handles expiry and redrive of a visible m before delivery; true when m is gone. */
static bool drop_or_redrive(struct sqs_queue *q, struct sqs_msg *m, struct pend *bg, int64_t now,
                            bool *dlq_kick)
{
    if (expired(q, m, now)) {
        index_remove(q, m);
        rec_del_msg(bg, q, m->seq);
        msg_free(m);
        return true;
    }
    if (q->max_receive && m->receive_count >= q->max_receive) {
        struct sqs_queue *dlq = queue_by_arn(q->s, q->dlq_arn);
        if (dlq && dlq != q) {
            dead_letter(q, dlq, m, bg, now);
            *dlq_kick = true;
            return true;
        }
    }
    return false;
}

static json_t *take(struct sqs_queue *q, json_t *in, int max, int64_t vis)
{
    int64_t now = (int64_t)now_ms();
    promote(q, now);
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
        struct sqs_queue *dlq = queue_by_arn(q->s, q->dlq_arn);
        if (dlq && dlq->waiters)
            kick(dlq);
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
    const char *name = in_str(c->in, "QueueName");
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
    if (!fifo && attrs && truthy(json_object_get(attrs, "FifoQueue")))
        FAIL(c, "InvalidParameterValue",
             "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
             "or underscores, must end with .fifo suffix and be 1 to 80 in length.");
    if (fifo && !truthy(json_object_get(attrs, "FifoQueue")))
        FAIL(c, "InvalidParameterValue",
             "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
             "or underscores, must end with .fifo suffix and be 1 to 80 in length.");
    char url[512];
    queue_url(s, c, name, url, sizeof(url));
    struct sqs_queue *q = queue_find(s, name);
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
    struct pend *p = pend_new(s, c);
    rec_put_queue(p, q);
    p->out = json_pack("{s:s}", "QueueUrl", url);
    pend_submit(p);
}

static void op_get_queue_url(struct nb_sqs *s, struct nb_sqs_call *c)
{
    const char *name = in_str(c->in, "QueueName");
    if (!name)
        FAIL(c, "MissingParameter", "The request must contain the parameter QueueName.");
    if (!queue_find(s, name))
        FAIL(c, "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.");
    char url[512];
    queue_url(s, c, name, url, sizeof(url));
    ok(c, json_pack("{s:s}", "QueueUrl", url));
}

static int cmp_queue(const void *a, const void *b)
{
    return strcmp((*(struct sqs_queue *const *)a)->name, (*(struct sqs_queue *const *)b)->name);
}

static void op_list_queues(struct nb_sqs *s, struct nb_sqs_call *c)
{
    const char *prefix = in_str(c->in, "QueueNamePrefix");
    const char *token = in_str(c->in, "NextToken");
    int64_t max = 1000;
    int has_max = in_int(c->in, "MaxResults", 1, 1000, &max);
    if (has_max < 0)
        FAIL(c, "InvalidParameterValue",
             "Value for parameter MaxResults is invalid. Reason: MaxResults must be an "
             "integer between 1 and 1000.");
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
    ok(c, out);
}

static void op_get_queue_attributes(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
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
    promote(q, now);
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
    ok(c, out);
}

static void op_set_queue_attributes(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    json_t *attrs = json_object_get(c->in, "Attributes");
    if (!json_is_object(attrs))
        FAIL(c, "MissingParameter", "The request must contain the parameter Attribute.Name.");
    const char *k;
    json_t *v;
    json_object_foreach (attrs, k, v) {
        if (!strcmp(k, "FifoQueue") && q->fifo && truthy(v))
            continue;
        if (check_attr(c, q->fifo, false, k, v) < 0)
            return;
    }
    json_object_update(q->attrs, attrs);
    q->modified_s = (int64_t)(now_ms() / 1000);
    queue_parse(q);
    struct pend *p = pend_new(s, c);
    rec_put_queue(p, q);
    p->out = json_object();
    pend_submit(p);
    kick(q); /* a shorter wait or a redrive may change who gets what */
}

static void op_delete_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    struct pend *p = pend_new(s, c);
    pend_rec(p, NB_SQS_PURGE, q->name);
    pend_rec(p, NB_SQS_DEL_QUEUE, q->name);
    p->out = json_object();
    queue_drop(s, q);
    pend_submit(p);
}

static void op_purge_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    for (size_t i = 0; i < q->map_cap; i++)
        if (q->map[i]) {
            struct sqs_msg *m = q->map[i];
            group_unlink(q, m);
            msg_free(m);
        }
    free(q->map);
    q->map = NULL;
    q->map_cap = q->map_n = 0;
    q->heap_n = 0;
    q->ready_head = q->ready_tail = NULL;
    q->ready_n = 0;
    struct pend *p = pend_new(s, c);
    pend_rec(p, NB_SQS_PURGE, q->name);
    p->out = json_object();
    pend_submit(p);
}

static void op_tag_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    json_t *tags = json_object_get(c->in, "Tags");
    if (!json_is_object(tags))
        FAIL(c, "MissingParameter", "The request must contain the parameter Tags.");
    json_object_update(q->tags, tags);
    struct pend *p = pend_new(s, c);
    rec_put_queue(p, q);
    p->out = json_object();
    pend_submit(p);
}

static void op_untag_queue(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
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
    struct pend *p = pend_new(s, c);
    rec_put_queue(p, q);
    p->out = json_object();
    pend_submit(p);
}

static void op_list_queue_tags(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    json_t *out = json_object();
    if (json_object_size(q->tags))
        json_object_set(out, "Tags", q->tags);
    ok(c, out);
}

/* -- send -- */

struct send_err {
    const char *code;
    char msg[1024];
};

static bool valid_attr_name(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > 256 || n[0] == '.' || n[l - 1] == '.' || strstr(n, "..") ||
        !strncasecmp(n, "AWS.", 4) || !strncasecmp(n, "Amazon.", 7))
        return false;
    for (size_t i = 0; i < l; i++)
        if (!(isalnum((unsigned char)n[i]) || n[i] == '-' || n[i] == '_' || n[i] == '.'))
            return false;
    return true;
}

/* Validates message attributes; returns their size in bytes or -1 with e filled. */
static int64_t check_msg_attrs(json_t *attrs, struct send_err *e)
{
    if (!attrs)
        return 0;
    if (!json_is_object(attrs) || json_object_size(attrs) > 10) {
        e->code = "InvalidParameterValue";
        snprintf(e->msg, sizeof(e->msg),
                 "Number of message attributes [%zu] exceeds the allowed maximum [10].",
                 json_object_size(attrs));
        return -1;
    }
    int64_t size = 0;
    const char *k;
    json_t *v;
    json_object_foreach (attrs, k, v) {
        const char *type = in_str(v, "DataType");
        const char *sv = in_str(v, "StringValue");
        const char *bv = in_str(v, "BinaryValue");
        e->code = "InvalidParameterValue";
        if (!valid_attr_name(k)) {
            snprintf(e->msg, sizeof(e->msg), "Message attribute name '%s' is invalid.", k);
            return -1;
        }
        if (!type || !*type) {
            snprintf(e->msg, sizeof(e->msg),
                     "The message attribute '%s' must contain non-empty message attribute type.",
                     k);
            return -1;
        }
        bool is_bin = !strncmp(type, "Binary", 6) && (!type[6] || type[6] == '.');
        bool is_str = (!strncmp(type, "String", 6) && (!type[6] || type[6] == '.')) ||
                      (!strncmp(type, "Number", 6) && (!type[6] || type[6] == '.'));
        if (!is_bin && !is_str) {
            snprintf(e->msg, sizeof(e->msg),
                     "The type of message (user) attribute '%s' is invalid. You must use only the "
                     "following supported type prefixes: Binary, Number, String.",
                     k);
            return -1;
        }
        if ((is_str && (!sv || !*sv || bv)) || (is_bin && (!bv || !*bv || sv))) {
            snprintf(e->msg, sizeof(e->msg),
                     "The message attribute '%s' with type '%s' must use field '%s'.", k, type,
                     is_bin ? "Binary" : "String");
            return -1;
        }
        if (is_str && !sqs_valid_chars(sv, json_string_length(json_object_get(v, "StringValue")))) {
            e->code = "InvalidMessageContents";
            snprintf(e->msg, sizeof(e->msg), "Invalid characters found in message attribute '%s'",
                     k);
            return -1;
        }
        size_t blen = 0;
        if (is_bin) {
            unsigned char *raw = NULL;
            if (b64_decode(bv, strlen(bv), &raw, &blen, NULL) < 0) {
                snprintf(e->msg, sizeof(e->msg), "The message attribute '%s' is not valid base64.",
                         k);
                return -1;
            }
            free(raw);
        }
        size += (int64_t)(strlen(k) + strlen(type) + (is_bin ? blen : strlen(sv)));
    }
    return size;
}

/* Builds a message from one SendMessage input (or batch entry); NULL with e on bad input. */
static struct sqs_msg *build_msg(struct sqs_queue *q, json_t *in, struct send_err *e)
{
    const char *body = in_str(in, "MessageBody");
    e->code = "InvalidParameterValue";
    if (!body) {
        e->code = "MissingParameter";
        snprintf(e->msg, sizeof(e->msg), "The request must contain the parameter MessageBody.");
        return NULL;
    }
    size_t blen = json_string_length(json_object_get(in, "MessageBody"));
    if (blen == 0) {
        e->code = "MissingParameter";
        snprintf(e->msg, sizeof(e->msg), "The request must contain the parameter MessageBody.");
        return NULL;
    }
    if (!sqs_valid_chars(body, blen)) {
        e->code = "InvalidMessageContents";
        snprintf(e->msg, sizeof(e->msg),
                 "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 "
                 "to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF");
        return NULL;
    }
    json_t *attrs = json_object_get(in, "MessageAttributes");
    if (attrs && !json_object_size(attrs))
        attrs = NULL;
    int64_t asz = check_msg_attrs(attrs, e);
    if (asz < 0)
        return NULL;
    if ((int64_t)blen + asz > q->max_size) {
        snprintf(e->msg, sizeof(e->msg),
                 "One or more parameters are invalid. Reason: Message must be shorter than %" PRId64
                 " bytes.",
                 q->max_size);
        return NULL;
    }
    int64_t delay = q->delay;
    int hd = in_int(in, "DelaySeconds", 0, 900, &delay);
    if (hd < 0) {
        snprintf(e->msg, sizeof(e->msg),
                 "Value for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 "
                 "and <= 900.");
        return NULL;
    }
    const char *group = in_str(in, "MessageGroupId");
    const char *dedup = in_str(in, "MessageDeduplicationId");
    if (q->fifo) {
        if (hd == 1) {
            snprintf(e->msg, sizeof(e->msg),
                     "Value %" PRId64 " for parameter DelaySeconds is invalid. Reason: The request "
                     "include parameter that is not valid for this queue type.",
                     delay);
            return NULL;
        }
        if (!group || !*group) {
            e->code = "MissingParameter";
            snprintf(e->msg, sizeof(e->msg),
                     "The request must contain the parameter MessageGroupId.");
            return NULL;
        }
        if (!dedup && !q->content_dedup) {
            snprintf(e->msg, sizeof(e->msg),
                     "The queue should either have ContentBasedDeduplication enabled or "
                     "MessageDeduplicationId provided explicitly");
            return NULL;
        }
    } else if (dedup) {
        snprintf(e->msg, sizeof(e->msg),
                 "Value %s for parameter MessageDeduplicationId is invalid. Reason: The request "
                 "include parameter that is not valid for this queue type.",
                 dedup);
        return NULL;
    }
    struct sqs_msg *m = xcalloc(1, sizeof(*m));
    uuid_v4(m->id);
    m->body = xstrdup(body);
    sqs_md5_hex(body, blen, m->md5_body);
    if (attrs) {
        m->attrs = json_deep_copy(attrs);
        sqs_md5_attrs(m->attrs, m->md5_attrs, NULL);
    }
    json_t *msys = json_object_get(in, "MessageSystemAttributes");
    const char *trace = in_str(json_object_get(msys, "AWSTraceHeader"), "StringValue");
    if (trace)
        m->sys = json_pack("{s:s}", "AWSTraceHeader", trace);
    if (q->fifo) {
        m->group = xstrdup(group);
        if (dedup) {
            m->dedup = xstrdup(dedup);
        } else {
            unsigned char md[32];
            char hex[65];
            sha256(body, blen, md);
            hex_encode(md, 32, hex);
            m->dedup = xstrdup(hex);
        }
    }
    m->sent_ms = (int64_t)now_ms();
    m->visible_ms = m->sent_ms + delay * 1000;
    m->heap_idx = SIZE_MAX;
    m->seq = q->next_seq++;
    return m;
}

/* FIFO: a dedup id seen within the window; expired entries are dropped on the way. */
static struct dedup *dedup_find(struct sqs_queue *q, const char *id, int64_t now)
{
    size_t w = 0;
    struct dedup *hit = NULL;
    for (size_t i = 0; i < q->n_dedups; i++) {
        if (q->dedups[i].expires_ms <= now) {
            free(q->dedups[i].id);
            continue;
        }
        q->dedups[w++] = q->dedups[i];
    }
    q->n_dedups = w;
    for (size_t i = 0; i < q->n_dedups; i++)
        if (!strcmp(q->dedups[i].id, id))
            hit = &q->dedups[i];
    return hit;
}

static void dedup_add(struct sqs_queue *q, const struct sqs_msg *m, int64_t now)
{
    if (q->n_dedups == q->cap_dedups) {
        q->cap_dedups = q->cap_dedups ? 2 * q->cap_dedups : 16;
        q->dedups = xrealloc(q->dedups, q->cap_dedups * sizeof(*q->dedups));
    }
    struct dedup *d = &q->dedups[q->n_dedups++];
    d->id = xstrdup(m->dedup);
    d->expires_ms = now + DEDUP_WINDOW_MS;
    memcpy(d->msg_id, m->id, sizeof(d->msg_id));
    d->seq = m->seq;
}

static json_t *send_result(const struct sqs_queue *q, const struct sqs_msg *m, const char *id,
                           uint64_t seq)
{
    json_t *o = json_pack("{s:s, s:s}", "MessageId", id, "MD5OfMessageBody", m->md5_body);
    if (m->md5_attrs[0])
        json_object_set_new(o, "MD5OfMessageAttributes", json_string(m->md5_attrs));
    if (q->fifo) {
        char sn[32];
        snprintf(sn, sizeof(sn), "%020" PRIu64, seq);
        json_object_set_new(o, "SequenceNumber", json_string(sn));
    }
    return o;
}

static void send_durable(struct pend *p, int status, const struct nb_err *err)
{
    struct sqs_queue *q = queue_find(p->s, p->queue);
    if (status == 0 && q) {
        int64_t now = (int64_t)now_ms();
        for (size_t i = 0; i < p->n_msgs; i++) {
            index_add(q, p->msgs[i], now);
            p->msgs[i] = NULL;
        }
        p->n_msgs = 0;
    }
    if (p->call) {
        if (status < 0)
            fail(p->call, "InternalError", "cannot store the message: %s", err ? err->msg : "");
        else
            ok(p->call, json_incref(p->out));
    }
    if (p->sent_cb)
        p->sent_cb(p->cb_data, status < 0 ? status : 0,
                   status < 0 ? NULL : json_string_value(json_object_get(p->out, "MessageId")));
    if (q)
        kick(q);
}

/* Adds m to p (or answers from the dedup window); returns the entry's result. */
static json_t *send_one(struct sqs_queue *q, struct pend *p, struct sqs_msg *m)
{
    if (q->fifo) {
        int64_t now = (int64_t)now_ms();
        struct dedup *d = dedup_find(q, m->dedup, now);
        if (d) {
            json_t *r = send_result(q, m, d->msg_id, d->seq);
            msg_free(m);
            return r;
        }
        dedup_add(q, m, now);
    }
    json_t *r = send_result(q, m, m->id, m->seq);
    rec_put_msg(p, q, m);
    p->msgs = xrealloc(p->msgs, (p->n_msgs + 1) * sizeof(*p->msgs));
    p->msgs[p->n_msgs++] = m;
    return r;
}

static void op_send_message(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    struct send_err e;
    struct sqs_msg *m = build_msg(q, c->in, &e);
    if (!m)
        FAIL(c, e.code, "%s", e.msg);
    struct pend *p = pend_new(s, c);
    p->queue = xstrdup(q->name);
    p->then = send_durable;
    p->out = send_one(q, p, m);
    pend_submit(p);
}

static bool valid_entry_id(const char *id)
{
    size_t l = strlen(id);
    if (l == 0 || l > 80)
        return false;
    for (size_t i = 0; i < l; i++)
        if (!(isalnum((unsigned char)id[i]) || id[i] == '-' || id[i] == '_'))
            return false;
    return true;
}

/* Common checks of a batch's Entries; NULL after failing c. */
static json_t *batch_entries(struct nb_sqs_call *c, const char *entry_name)
{
    json_t *entries = json_object_get(c->in, "Entries");
    size_t n = json_array_size(entries);
    if (n == 0) {
        fail(c, "AWS.SimpleQueueService.EmptyBatchRequest",
             "There should be at least one %s in the request.", entry_name);
        return NULL;
    }
    if (n > MAX_BATCH) {
        fail(c, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
             "Maximum number of entries per request are %d. You have sent %zu.", MAX_BATCH, n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *id = in_str(json_array_get(entries, i), "Id");
        if (!id || !valid_entry_id(id)) {
            fail(c, "AWS.SimpleQueueService.InvalidBatchEntryId",
                 "A batch entry id can only contain alphanumeric characters, hyphens and "
                 "underscores. It can be at most 80 letters long.");
            return NULL;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(id, in_str(json_array_get(entries, j), "Id"))) {
                fail(c, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id %s repeated.", id);
                return NULL;
            }
    }
    return entries;
}

static json_t *batch_error(const char *id, const char *code, const char *msg)
{
    return json_pack("{s:s, s:b, s:s, s:s}", "Id", id, "SenderFault", 1, "Code", code, "Message",
                     msg);
}

static void op_send_message_batch(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    json_t *entries = batch_entries(c, "SendMessageBatchRequestEntry");
    if (!entries)
        return;
    int64_t total = 0;
    size_t i;
    json_t *en;
    json_array_foreach (entries, i, en) {
        const char *b = in_str(en, "MessageBody");
        total += b ? (int64_t)strlen(b) : 0;
    }
    if (total > q->max_size)
        FAIL(c, "AWS.SimpleQueueService.BatchRequestTooLong",
             "Batch requests cannot be longer than %" PRId64 " bytes. You have sent %" PRId64
             " bytes.",
             q->max_size, total);
    struct pend *p = pend_new(s, c);
    p->queue = xstrdup(q->name);
    p->then = send_durable;
    json_t *okl = json_array(), *bad = json_array();
    json_array_foreach (entries, i, en) {
        const char *id = in_str(en, "Id");
        struct send_err e;
        struct sqs_msg *m = build_msg(q, en, &e);
        if (!m) {
            json_array_append_new(bad, batch_error(id, e.code, e.msg));
            continue;
        }
        json_t *r = send_one(q, p, m);
        json_object_set_new(r, "Id", json_string(id));
        json_array_append_new(okl, r);
    }
    p->out = json_pack("{s:o, s:o}", "Successful", okl, "Failed", bad);
    pend_submit(p);
}

/* Parses a receipt handle into seq; false when malformed. */
static bool parse_handle(const char *h, uint64_t *seq, uint64_t *nonce)
{
    if (!h || strlen(h) != 33 || h[16] != '-')
        return false;
    char *end;
    char a[17];
    memcpy(a, h, 16);
    a[16] = '\0';
    *seq = strtoull(a, &end, 16);
    if (*end)
        return false;
    *nonce = strtoull(h + 17, &end, 16);
    return !*end;
}

/* Deletes by handle into p; NULL or an error code (with msg). */
static const char *delete_one(struct sqs_queue *q, const char *h, struct pend *p, char *msg,
                              size_t len)
{
    uint64_t seq, nonce;
    if (!parse_handle(h, &seq, &nonce)) {
        snprintf(msg, len, "The input receipt handle \"%s\" is not a valid receipt handle.",
                 h ? h : "");
        return "ReceiptHandleIsInvalid";
    }
    struct sqs_msg *m = map_get(q, seq);
    if (m) { /* gone already: SQS answers success too */
        index_remove(q, m);
        msg_free(m);
        rec_del_msg(p, q, seq);
    }
    return NULL;
}

static void op_delete_message(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    const char *h = in_str(c->in, "ReceiptHandle");
    if (!h)
        FAIL(c, "MissingParameter", "The request must contain the parameter ReceiptHandle.");
    struct pend *p = pend_new(s, c);
    char msg[300];
    const char *code = delete_one(q, h, p, msg, sizeof(msg));
    if (code) {
        pend_free(p);
        FAIL(c, code, "%s", msg);
    }
    p->out = json_object();
    pend_submit(p);
}

static void op_delete_message_batch(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    json_t *entries = batch_entries(c, "DeleteMessageBatchRequestEntry");
    if (!entries)
        return;
    struct pend *p = pend_new(s, c);
    json_t *okl = json_array(), *bad = json_array();
    size_t i;
    json_t *en;
    json_array_foreach (entries, i, en) {
        const char *id = in_str(en, "Id");
        char msg[300];
        const char *code = delete_one(q, in_str(en, "ReceiptHandle"), p, msg, sizeof(msg));
        if (code)
            json_array_append_new(bad, batch_error(id, code, msg));
        else
            json_array_append_new(okl, json_pack("{s:s}", "Id", id));
    }
    p->out = json_pack("{s:o, s:o}", "Successful", okl, "Failed", bad);
    pend_submit(p);
}

static const char *change_one(struct sqs_queue *q, const char *h, json_t *vt, struct pend *p,
                              char *msg, size_t len)
{
    uint64_t seq, nonce;
    if (!parse_handle(h, &seq, &nonce)) {
        snprintf(msg, len, "The input receipt handle \"%s\" is not a valid receipt handle.",
                 h ? h : "");
        return "ReceiptHandleIsInvalid";
    }
    json_t *tmp = json_pack("{s:O?}", "v", vt);
    int64_t v;
    int r = in_int(tmp, "v", 0, 43200, &v);
    json_decref(tmp);
    if (r != 1) {
        snprintf(msg, len,
                 "Value for parameter VisibilityTimeout is invalid. Reason: Must be between 0 "
                 "and 43200.");
        return r == 0 ? "MissingParameter" : "InvalidParameterValue";
    }
    int64_t now = (int64_t)now_ms();
    promote(q, now);
    struct sqs_msg *m = map_get(q, seq);
    if (!m || m->heap_idx == SIZE_MAX || !m->receive_count || m->nonce != nonce) {
        snprintf(msg, len,
                 "Value %s for parameter ReceiptHandle is invalid. Reason: Message does not "
                 "exist or is not available for visibility timeout change.",
                 h);
        return "AWS.SimpleQueueService.MessageNotInflight";
    }
    heap_remove(q, m);
    m->visible_ms = now + v * 1000;
    if (v == 0)
        ready_append(q, m);
    else
        heap_push(q, m);
    rec_upd_msg(p, q, m);
    return NULL;
}

static void change_durable(struct pend *p, int status, const struct nb_err *err)
{
    if (status < 0)
        fail(p->call, "InternalError", "cannot store the change: %s", err ? err->msg : "");
    else
        ok(p->call, json_incref(p->out));
    struct sqs_queue *q = queue_find(p->s, p->queue);
    if (q)
        kick(q);
}

static void op_change_visibility(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    const char *h = in_str(c->in, "ReceiptHandle");
    if (!h)
        FAIL(c, "MissingParameter", "The request must contain the parameter ReceiptHandle.");
    struct pend *p = pend_new(s, c);
    char msg[400];
    const char *code =
        change_one(q, h, json_object_get(c->in, "VisibilityTimeout"), p, msg, sizeof(msg));
    if (code) {
        pend_free(p);
        FAIL(c, code, "%s", msg);
    }
    p->out = json_object();
    p->queue = xstrdup(q->name);
    p->then = change_durable;
    pend_submit(p);
}

static void op_change_visibility_batch(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    json_t *entries = batch_entries(c, "ChangeMessageVisibilityBatchRequestEntry");
    if (!entries)
        return;
    struct pend *p = pend_new(s, c);
    json_t *okl = json_array(), *bad = json_array();
    size_t i;
    json_t *en;
    json_array_foreach (entries, i, en) {
        const char *id = in_str(en, "Id");
        char msg[400];
        const char *code =
            change_one(q, in_str(en, "ReceiptHandle"), json_object_get(en, "VisibilityTimeout"), p,
                       msg, sizeof(msg));
        if (code)
            json_array_append_new(bad, batch_error(id, code, msg));
        else
            json_array_append_new(okl, json_pack("{s:s}", "Id", id));
    }
    p->out = json_pack("{s:o, s:o}", "Successful", okl, "Failed", bad);
    p->queue = xstrdup(q->name);
    p->then = change_durable;
    pend_submit(p);
}

static void op_receive_message(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = call_queue(s, c);
    if (!q)
        return;
    int64_t max = 1, vis = q->visibility, wait = q->wait;
    if (in_int(c->in, "MaxNumberOfMessages", 1, 10, &max) < 0)
        FAIL(c, "InvalidParameterValue",
             "Value for parameter MaxNumberOfMessages is invalid. Reason: Must be "
             "between 1 and 10, if provided.");
    if (in_int(c->in, "VisibilityTimeout", 0, 43200, &vis) < 0)
        FAIL(c, "InvalidParameterValue",
             "Value for parameter VisibilityTimeout is invalid. Reason: Must be between 0 "
             "and 43200.");
    if (in_int(c->in, "WaitTimeSeconds", 0, 20, &wait) < 0)
        FAIL(c, "InvalidParameterValue",
             "Value for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= "
             "20, if provided.");
    c->max = (int)max;
    c->vis = (int)vis;
    json_t *msgs = take(q, c->in, c->max, vis);
    if (json_array_size(msgs) || wait == 0) {
        reply_receive(c, msgs);
        return;
    }
    json_decref(msgs);
    c->deadline_ms = (int64_t)now_ms() + wait * 1000;
    c->wq = q;
    c->wnext = NULL;
    struct nb_sqs_call **pp = &q->waiters;
    while (*pp)
        pp = &(*pp)->wnext;
    *pp = c;
    arm_timer(q);
}

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
    {"SendMessage", op_send_message},
    {"SendMessageBatch", op_send_message_batch},
    {"ReceiveMessage", op_receive_message},
    {"DeleteMessage", op_delete_message},
    {"DeleteMessageBatch", op_delete_message_batch},
    {"ChangeMessageVisibility", op_change_visibility},
    {"ChangeMessageVisibilityBatch", op_change_visibility_batch},
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
    fail(c, "InvalidAction", "The action %s is not valid for this endpoint.", c->op);
}

/* ---- internal API ------------------------------------------------------------------------ */

int sqs_send(struct nb_sqs *s, const char *queue_arn, const char *body, json_t *attrs,
             nb_sqs_sent_cb cb, void *data)
{
    struct sqs_queue *q = queue_by_arn(s, queue_arn);
    if (!q)
        return -ENOENT;
    json_t *in = json_pack("{s:s}", "MessageBody", body);
    if (attrs)
        json_object_set(in, "MessageAttributes", attrs);
    if (q->fifo)
        json_object_set_new(in, "MessageGroupId", json_string("default"));
    struct send_err e;
    struct sqs_msg *m = build_msg(q, in, &e);
    json_decref(in);
    if (!m)
        return -EINVAL;
    struct pend *p = pend_new(s, NULL);
    p->queue = xstrdup(q->name);
    p->then = send_durable;
    p->sent_cb = cb;
    p->cb_data = data;
    p->out = send_one(q, p, m);
    pend_submit(p);
    return 0;
}

json_t *sqs_receive_internal(struct nb_sqs *s, const char *queue_arn, int max, int vis)
{
    struct sqs_queue *q = queue_by_arn(s, queue_arn);
    if (!q)
        return NULL;
    json_t *in =
        json_pack("{s:[s], s:[s]}", "AttributeNames", "All", "MessageAttributeNames", "All");
    json_t *r = take(q, in, max < 1 ? 1 : max > 10 ? 10 : max, vis < 0 ? q->visibility : vis);
    json_decref(in);
    return r;
}

static void internal_deleted(struct pend *p, int status, const struct nb_err *err)
{
    if (p->done_cb)
        p->done_cb(p->cb_data, status < 0 ? status : 0);
}

int sqs_delete_internal(struct nb_sqs *s, const char *queue_arn, const char *receipt_handle,
                        nb_sqs_done_cb cb, void *data)
{
    struct sqs_queue *q = queue_by_arn(s, queue_arn);
    if (!q)
        return -ENOENT;
    struct pend *p = pend_new(s, NULL);
    char msg[300];
    if (delete_one(q, receipt_handle, p, msg, sizeof(msg))) {
        pend_free(p);
        return -EINVAL;
    }
    p->then = internal_deleted;
    p->done_cb = cb;
    p->cb_data = data;
    pend_submit(p);
    return 0;
}

int sqs_watch(struct nb_sqs *s, const char *queue_arn, nb_sqs_watch_cb cb, void *data)
{
    struct sqs_queue *q = queue_by_arn(s, queue_arn);
    if (!q)
        return -ENOENT;
    q->watch = cb;
    q->watch_data = data;
    arm_timer(q);
    return 0;
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
    struct sqs_queue *q = queue_find(s, r->queue);
    json_t *j = json_loads(r->doc, 0, NULL);
    const char *id = in_str(j, "id"), *body = in_str(j, "body");
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
    if (in_str(j, "group"))
        m->group = xstrdup(in_str(j, "group"));
    if (in_str(j, "dedup"))
        m->dedup = xstrdup(in_str(j, "dedup"));
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
    index_add(q, m, (int64_t)now_ms());
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
