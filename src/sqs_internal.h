/*
 * sqs_internal.h - what the files of the queue service share (sqs.c: service, queues, durability,
 * long polls, receive; sqs_index.c: the per-queue message index; sqs_message.c: the message
 * operations and the internal API). Not for other modules: they use sqs.h.
 *
 * Index invariant (sqs_index.c): every message of a queue is in its map (seq -> message) and in
 * exactly one of `ready` (visible now; heap_idx == SIZE_MAX) or `heap` (delayed or in flight,
 * ordered by visible_ms); a FIFO message is also chained into its group in send order.
 * Everything here runs on the loop thread, except write_batch's copy of the records.
 */
#ifndef NIMBUS_SQS_INTERNAL_H
#define NIMBUS_SQS_INTERNAL_H

#include <uv.h>

#include "commit_queue.h"
#include "sqs.h"
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

/* Fail or answer, and leave the (void) operation. */
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        sqs__fail(__VA_ARGS__);                                                                    \
        return;                                                                                    \
    } while (0)
#define OK(c, out)                                                                                 \
    do {                                                                                           \
        sqs__ok(c, out);                                                                           \
        return;                                                                                    \
    } while (0)

/* sqs.c */
void sqs__fail(struct nb_sqs_call *c, const char *code, const char *fmt, ...) PRINTF_LIKE(3, 4);
void sqs__ok(struct nb_sqs_call *c, json_t *out);
const char *sqs__in_str(json_t *in, const char *name);
int sqs__in_int(json_t *in, const char *name, int64_t min, int64_t max, int64_t *v);
bool sqs__truthy(json_t *j);
struct pend *sqs__pend_new(struct nb_sqs *s, struct nb_sqs_call *c);
void sqs__pend_free(struct pend *p);
void sqs__pend_submit(struct pend *p);
void sqs__rec_put_msg(struct pend *p, const struct sqs_queue *q, const struct sqs_msg *m);
void sqs__rec_upd_msg(struct pend *p, const struct sqs_queue *q, const struct sqs_msg *m);
void sqs__rec_del_msg(struct pend *p, const struct sqs_queue *q, uint64_t seq);
struct sqs_queue *sqs__queue_find(struct nb_sqs *s, const char *name);
struct sqs_queue *sqs__queue_by_arn(struct nb_sqs *s, const char *arn);
struct sqs_queue *sqs__call_queue(struct nb_sqs *s, struct nb_sqs_call *c);
void sqs__reply_receive(struct nb_sqs_call *c, json_t *msgs);
void sqs__kick(struct sqs_queue *q);
void sqs__arm_timer(struct sqs_queue *q);
json_t *sqs__take(struct sqs_queue *q, json_t *in, int max, int64_t vis);

/* sqs_index.c */
struct sqs_msg *sqs__map_get(struct sqs_queue *q, uint64_t seq);
void sqs__heap_push(struct sqs_queue *q, struct sqs_msg *m);
void sqs__heap_remove(struct sqs_queue *q, struct sqs_msg *m);
void sqs__ready_append(struct sqs_queue *q, struct sqs_msg *m);
void sqs__ready_remove(struct sqs_queue *q, struct sqs_msg *m);
void sqs__group_unlink(struct sqs_queue *q, struct sqs_msg *m);
void sqs__msg_free(struct sqs_msg *m);
void sqs__index_add(struct sqs_queue *q, struct sqs_msg *m, int64_t now);
void sqs__index_remove(struct sqs_queue *q, struct sqs_msg *m);
void sqs__promote(struct sqs_queue *q, int64_t now);

/* sqs_message.c */
/* Remembers m's deduplication id for DEDUP_WINDOW_MS after sent (FIFO). */
void sqs__dedup_add(struct sqs_queue *q, const struct sqs_msg *m, int64_t sent);
void sqs__op_send_message(struct nb_sqs *s, struct nb_sqs_call *c);
void sqs__op_send_message_batch(struct nb_sqs *s, struct nb_sqs_call *c);
void sqs__op_delete_message(struct nb_sqs *s, struct nb_sqs_call *c);
void sqs__op_delete_message_batch(struct nb_sqs *s, struct nb_sqs_call *c);
void sqs__op_change_visibility(struct nb_sqs *s, struct nb_sqs_call *c);
void sqs__op_change_visibility_batch(struct nb_sqs *s, struct nb_sqs_call *c);
void sqs__op_receive_message(struct nb_sqs *s, struct nb_sqs_call *c);

#endif
