/*
 * sqs_message.c - the message operations of the queue service (SendMessage(Batch),
 * ReceiveMessage, DeleteMessage(Batch), ChangeMessageVisibility(Batch)) and the internal API of
 * sqs.h for event source mappings. Validation follows SQS (character set, sizes, attribute
 * names and types, FIFO rules); a send or delete replies from its commit callback, once durable.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <strings.h>

#include "codec.h"
#include "sqs_codec.h"
#include "sqs_internal.h"

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
        const char *type = sqs__in_str(v, "DataType");
        const char *sv = sqs__in_str(v, "StringValue");
        const char *bv = sqs__in_str(v, "BinaryValue");
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
    const char *body = sqs__in_str(in, "MessageBody");
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
    int hd = sqs__in_int(in, "DelaySeconds", 0, 900, &delay);
    if (hd < 0) {
        snprintf(e->msg, sizeof(e->msg),
                 "Value for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 "
                 "and <= 900.");
        return NULL;
    }
    const char *group = sqs__in_str(in, "MessageGroupId");
    const char *dedup = sqs__in_str(in, "MessageDeduplicationId");
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
    const char *trace = sqs__in_str(json_object_get(msys, "AWSTraceHeader"), "StringValue");
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

void sqs__dedup_add(struct sqs_queue *q, const struct sqs_msg *m, int64_t now)
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
    struct sqs_queue *q = sqs__queue_find(p->s, p->queue);
    if (status == 0 && q) {
        int64_t now = (int64_t)now_ms();
        for (size_t i = 0; i < p->n_msgs; i++) {
            sqs__index_add(q, p->msgs[i], now);
            p->msgs[i] = NULL;
        }
        p->n_msgs = 0;
    }
    if (p->call) {
        if (status < 0)
            sqs__fail(p->call, "InternalError", "cannot store the message: %s",
                      err ? err->msg : "");
        else
            sqs__ok(p->call, json_incref(p->out));
    }
    if (p->sent_cb)
        p->sent_cb(p->cb_data, status < 0 ? status : 0,
                   status < 0 ? NULL : json_string_value(json_object_get(p->out, "MessageId")));
    if (q)
        sqs__kick(q);
}

/* Adds m to p (or answers from the dedup window); returns the entry's result. */
static json_t *send_one(struct sqs_queue *q, struct pend *p, struct sqs_msg *m)
{
    if (q->fifo) {
        int64_t now = (int64_t)now_ms();
        struct dedup *d = dedup_find(q, m->dedup, now);
        if (d) {
            json_t *r = send_result(q, m, d->msg_id, d->seq);
            sqs__msg_free(m);
            return r;
        }
        sqs__dedup_add(q, m, now);
    }
    json_t *r = send_result(q, m, m->id, m->seq);
    sqs__rec_put_msg(p, q, m);
    p->msgs = xrealloc(p->msgs, (p->n_msgs + 1) * sizeof(*p->msgs));
    p->msgs[p->n_msgs++] = m;
    return r;
}

void sqs__op_send_message(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    struct send_err e;
    struct sqs_msg *m = build_msg(q, c->in, &e);
    if (!m)
        FAIL(c, e.code, "%s", e.msg);
    struct pend *p = sqs__pend_new(s, c);
    p->queue = xstrdup(q->name);
    p->then = send_durable;
    p->out = send_one(q, p, m);
    sqs__pend_submit(p);
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
        sqs__fail(c, "AWS.SimpleQueueService.EmptyBatchRequest",
                  "There should be at least one %s in the request.", entry_name);
        return NULL;
    }
    if (n > MAX_BATCH) {
        sqs__fail(c, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                  "Maximum number of entries per request are %d. You have sent %zu.", MAX_BATCH, n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *id = sqs__in_str(json_array_get(entries, i), "Id");
        if (!id || !valid_entry_id(id)) {
            sqs__fail(c, "AWS.SimpleQueueService.InvalidBatchEntryId",
                      "A batch entry id can only contain alphanumeric characters, hyphens and "
                      "underscores. It can be at most 80 letters long.");
            return NULL;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(id, sqs__in_str(json_array_get(entries, j), "Id"))) {
                sqs__fail(c, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id %s repeated.",
                          id);
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

void sqs__op_send_message_batch(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    json_t *entries = batch_entries(c, "SendMessageBatchRequestEntry");
    if (!entries)
        return;
    int64_t total = 0;
    size_t i;
    json_t *en;
    json_array_foreach (entries, i, en) {
        const char *b = sqs__in_str(en, "MessageBody");
        total += b ? (int64_t)strlen(b) : 0;
    }
    if (total > q->max_size)
        FAIL(c, "AWS.SimpleQueueService.BatchRequestTooLong",
             "Batch requests cannot be longer than %" PRId64 " bytes. You have sent %" PRId64
             " bytes.",
             q->max_size, total);
    struct pend *p = sqs__pend_new(s, c);
    p->queue = xstrdup(q->name);
    p->then = send_durable;
    json_t *okl = json_array(), *bad = json_array();
    json_array_foreach (entries, i, en) {
        const char *id = sqs__in_str(en, "Id");
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
    sqs__pend_submit(p);
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
    struct sqs_msg *m = sqs__map_get(q, seq);
    if (m) { /* gone already: SQS answers success too */
        sqs__index_remove(q, m);
        sqs__msg_free(m);
        sqs__rec_del_msg(p, q, seq);
    }
    return NULL;
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
    int r = sqs__in_int(tmp, "v", 0, 43200, &v);
    json_decref(tmp);
    if (r != 1) {
        snprintf(msg, len,
                 "Value for parameter VisibilityTimeout is invalid. Reason: Must be between 0 "
                 "and 43200.");
        return r == 0 ? "MissingParameter" : "InvalidParameterValue";
    }
    int64_t now = (int64_t)now_ms();
    sqs__promote(q, now);
    struct sqs_msg *m = sqs__map_get(q, seq);
    if (!m || m->heap_idx == SIZE_MAX || !m->receive_count || m->nonce != nonce) {
        snprintf(msg, len,
                 "Value %s for parameter ReceiptHandle is invalid. Reason: Message does not "
                 "exist or is not available for visibility timeout change.",
                 h);
        return "AWS.SimpleQueueService.MessageNotInflight";
    }
    sqs__heap_remove(q, m);
    m->visible_ms = now + v * 1000;
    if (v == 0)
        sqs__ready_append(q, m);
    else
        sqs__heap_push(q, m);
    sqs__rec_upd_msg(p, q, m);
    return NULL;
}

static void change_durable(struct pend *p, int status, const struct nb_err *err)
{
    if (status < 0)
        sqs__fail(p->call, "InternalError", "cannot store the change: %s", err ? err->msg : "");
    else
        sqs__ok(p->call, json_incref(p->out));
    struct sqs_queue *q = sqs__queue_find(p->s, p->queue);
    if (q)
        sqs__kick(q);
}

/* One receipt-handle operation on in (c->in, or one batch entry) into p: NULL, or an error code
 * with msg. */
typedef const char *(*handle_op_fn)(struct sqs_queue *q, json_t *in, struct pend *p, char *msg,
                                    size_t len);

static const char *delete_entry(struct sqs_queue *q, json_t *in, struct pend *p, char *msg,
                                size_t len)
{
    return delete_one(q, sqs__in_str(in, "ReceiptHandle"), p, msg, len);
}

static const char *change_entry(struct sqs_queue *q, json_t *in, struct pend *p, char *msg,
                                size_t len)
{
    return change_one(q, sqs__in_str(in, "ReceiptHandle"), json_object_get(in, "VisibilityTimeout"),
                      p, msg, len);
}

/*
 * The shared body of DeleteMessage and ChangeMessageVisibility (batch_entry NULL) and of their
 * Batch forms (batch_entry names the entries, for errors): runs op on c->in, or on each entry,
 * into a new pend whose out is {} or {"Successful":[{"Id"}...],"Failed":[...]}. Returns that pend
 * for the caller to finish and submit, or NULL once c was failed (unknown queue, no handle, a bad
 * batch, or the single operation's error). *qp receives the queue.
 */
static struct pend *handle_op(struct nb_sqs *s, struct nb_sqs_call *c, const char *batch_entry,
                              handle_op_fn op, struct sqs_queue **qp)
{
    struct sqs_queue *q = *qp = sqs__call_queue(s, c);
    if (!q)
        return NULL;
    char msg[400];
    if (!batch_entry) {
        if (!sqs__in_str(c->in, "ReceiptHandle")) {
            sqs__fail(c, "MissingParameter",
                      "The request must contain the parameter ReceiptHandle.");
            return NULL;
        }
        struct pend *p = sqs__pend_new(s, c);
        const char *code = op(q, c->in, p, msg, sizeof(msg));
        if (code) {
            sqs__pend_free(p);
            sqs__fail(c, code, "%s", msg);
            return NULL;
        }
        p->out = json_object();
        return p;
    }
    json_t *entries = batch_entries(c, batch_entry);
    if (!entries)
        return NULL;
    struct pend *p = sqs__pend_new(s, c);
    json_t *okl = json_array(), *bad = json_array();
    size_t i;
    json_t *en;
    json_array_foreach (entries, i, en) {
        const char *id = sqs__in_str(en, "Id");
        const char *code = op(q, en, p, msg, sizeof(msg));
        if (code)
            json_array_append_new(bad, batch_error(id, code, msg));
        else
            json_array_append_new(okl, json_pack("{s:s}", "Id", id));
    }
    p->out = json_pack("{s:o, s:o}", "Successful", okl, "Failed", bad);
    return p;
}

void sqs__op_delete_message(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q;
    struct pend *p = handle_op(s, c, NULL, delete_entry, &q);
    if (p)
        sqs__pend_submit(p);
}

void sqs__op_delete_message_batch(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q;
    struct pend *p = handle_op(s, c, "DeleteMessageBatchRequestEntry", delete_entry, &q);
    if (p)
        sqs__pend_submit(p);
}

/* A visibility change replies once durable, then wakes the queue's waiters (change_durable). */
static void change_visibility(struct nb_sqs *s, struct nb_sqs_call *c, const char *batch_entry)
{
    struct sqs_queue *q;
    struct pend *p = handle_op(s, c, batch_entry, change_entry, &q);
    if (!p)
        return;
    p->queue = xstrdup(q->name);
    p->then = change_durable;
    sqs__pend_submit(p);
}

void sqs__op_change_visibility(struct nb_sqs *s, struct nb_sqs_call *c)
{
    change_visibility(s, c, NULL);
}

void sqs__op_change_visibility_batch(struct nb_sqs *s, struct nb_sqs_call *c)
{
    change_visibility(s, c, "ChangeMessageVisibilityBatchRequestEntry");
}

void sqs__op_receive_message(struct nb_sqs *s, struct nb_sqs_call *c)
{
    struct sqs_queue *q = sqs__call_queue(s, c);
    if (!q)
        return;
    int64_t max = 1, vis = q->visibility, wait = q->wait;
    if (sqs__in_int(c->in, "MaxNumberOfMessages", 1, 10, &max) < 0)
        FAIL(c, "InvalidParameterValue",
             "Value for parameter MaxNumberOfMessages is invalid. Reason: Must be "
             "between 1 and 10, if provided.");
    if (sqs__in_int(c->in, "VisibilityTimeout", 0, 43200, &vis) < 0)
        FAIL(c, "InvalidParameterValue",
             "Value for parameter VisibilityTimeout is invalid. Reason: Must be between 0 "
             "and 43200.");
    if (sqs__in_int(c->in, "WaitTimeSeconds", 0, 20, &wait) < 0)
        FAIL(c, "InvalidParameterValue",
             "Value for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= "
             "20, if provided.");
    c->max = (int)max;
    c->vis = (int)vis;
    json_t *msgs = sqs__take(q, c->in, c->max, vis);
    if (json_array_size(msgs) || wait == 0) {
        sqs__reply_receive(c, msgs);
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
    sqs__arm_timer(q);
}

/* ---- internal API ------------------------------------------------------------------------ */

int sqs_send(struct nb_sqs *s, const char *queue_arn, const char *body, json_t *attrs,
             nb_sqs_sent_cb cb, void *data)
{
    struct sqs_queue *q = sqs__queue_by_arn(s, queue_arn);
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
    struct pend *p = sqs__pend_new(s, NULL);
    p->queue = xstrdup(q->name);
    p->then = send_durable;
    p->sent_cb = cb;
    p->cb_data = data;
    p->out = send_one(q, p, m);
    sqs__pend_submit(p);
    return 0;
}

json_t *sqs_receive_internal(struct nb_sqs *s, const char *queue_arn, int max, int vis)
{
    struct sqs_queue *q = sqs__queue_by_arn(s, queue_arn);
    if (!q)
        return NULL;
    json_t *in =
        json_pack("{s:[s], s:[s]}", "AttributeNames", "All", "MessageAttributeNames", "All");
    json_t *r = sqs__take(q, in, max < 1 ? 1 : max > 10 ? 10 : max, vis < 0 ? q->visibility : vis);
    json_decref(in);
    sqs__arm_timer(q); /* esm: the watch must hear when these become visible again */
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
    struct sqs_queue *q = sqs__queue_by_arn(s, queue_arn);
    if (!q)
        return -ENOENT;
    struct pend *p = sqs__pend_new(s, NULL);
    char msg[300];
    if (delete_one(q, receipt_handle, p, msg, sizeof(msg))) {
        sqs__pend_free(p);
        return -EINVAL;
    }
    p->then = internal_deleted;
    p->done_cb = cb;
    p->cb_data = data;
    sqs__pend_submit(p);
    return 0;
}

int sqs_watch(struct nb_sqs *s, const char *queue_arn, nb_sqs_watch_cb cb, void *data)
{
    struct sqs_queue *q = sqs__queue_by_arn(s, queue_arn);
    if (!q)
        return -ENOENT;
    q->watch = cb;
    q->watch_data = data;
    sqs__arm_timer(q);
    return 0;
}

/* esm: */
int sqs_queue_info(struct nb_sqs *s, const char *queue_arn, bool *fifo)
{
    struct sqs_queue *q = s ? sqs__queue_by_arn(s, queue_arn) : NULL;
    if (!q)
        return -ENOENT;
    *fifo = q->fifo;
    return 0;
}
