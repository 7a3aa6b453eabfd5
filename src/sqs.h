/*
 * sqs.h - the SQS-compatible queue service: queues, messages, long polls and their durability.
 * One implementation of every operation; the wire protocols (query/XML and JSON 1.0) are thin
 * codecs in api_sqs.c and sqs_codec.c that meet here in the JSON protocol's shapes.
 *
 * State lives on the loop thread: per queue an in-memory index of its messages (a FIFO list of
 * visible ones, a min-heap of invisible ones by the time they become visible, FIFO groups),
 * rebuilt from DATA_DIR/sqs.db at start. Changes go to the database through a commit queue
 * (commit_queue.h): a send or a delete is answered only after its batch is fsync'd; receives
 * (receive count, visibility) are written in the same batches but not waited for.
 * Ownership: calls are owned by the caller until their reply callback; JSON passed in is
 * borrowed, JSON handed to callbacks is borrowed for the call.
 */
#ifndef NIMBUS_SQS_H
#define NIMBUS_SQS_H

#include <jansson.h>

#include "err.h"

struct nb_daemon;
struct nb_sqs;

/* An SQS error: the query protocol's code, the JSON protocol's __type short name, status. */
struct nb_sqs_error {
    int status;
    const char *code; /* e.g. "AWS.SimpleQueueService.NonExistentQueue" (static) */
    const char *type; /* e.g. "QueueDoesNotExist" (static) */
    bool sender;
    char msg[512];
};

struct nb_sqs_call;
/* out: the operation's output (borrowed), or NULL with e set. */
typedef void (*nb_sqs_reply_cb)(struct nb_sqs_call *c, json_t *out, const struct nb_sqs_error *e);

struct nb_sqs_call {
    const char *op;       /* "SendMessage", ... */
    json_t *in;           /* input in the JSON shape (borrowed until the reply) */
    const char *url_base; /* "http://host:port" for QueueUrls */
    nb_sqs_reply_cb reply;
    void *data;
    /* private */
    struct nb_sqs_call *wnext; /* long-poll waiter list */
    struct sqs_queue *wq;
    int64_t deadline_ms;
    int max, vis;
};

/* Opens DATA_DIR/sqs.db and loads every queue and message. NULL with err. */
struct nb_sqs *sqs_open(struct nb_daemon *d, struct nb_err *err);
/* Answers held long polls (empty), writes what is queued, frees (loop thread). */
void sqs_close(struct nb_sqs *s);

/* True when op names an operation of the service. */
bool sqs_known_op(const char *op);
/* The queue ARN the call is about (from QueueUrl or QueueName), "*" otherwise; into buf. */
void sqs_call_resource(struct nb_sqs *s, const struct nb_sqs_call *c, char *buf, size_t len);
/* Runs c; c->reply runs exactly once, possibly before this returns. */
void sqs_call(struct nb_sqs *s, struct nb_sqs_call *c);
/* The client went away: a held long poll is answered (empty) now; other calls finish normally. */
void sqs_call_abort(struct nb_sqs *s, struct nb_sqs_call *c);
/* Fills e for an error outside an operation (InvalidAction, AccessDenied, MissingParameter...). */
void sqs_error_set(struct nb_sqs_error *e, const char *code, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

/*
 * Internal API for event source mappings and async destinations (no HTTP involved):
 * sqs_send: durably enqueues body (attrs: MessageAttributes JSON shape or NULL); cb runs on the
 *   loop after the fsync with status 0 and the message id, or a negative code (-ENOENT: no such
 *   queue, -EINVAL: bad message).
 * sqs_receive_internal: takes up to max visible messages (visibility vis seconds, -1 = the
 *   queue's); returns a new JSON array of messages in ReceiveMessage's shape, or NULL when the
 *   queue does not exist.
 * sqs_delete_internal: deletes by receipt handle; cb after the fsync (may be NULL).
 * sqs_watch: cb(data, queue_arn) runs on the loop whenever the queue has visible messages after
 *   a change (send, visibility expiry); one watcher per queue, NULL cb removes it.
 */
typedef void (*nb_sqs_sent_cb)(void *data, int status, const char *message_id);
typedef void (*nb_sqs_done_cb)(void *data, int status);
typedef void (*nb_sqs_watch_cb)(void *data, const char *queue_arn);
int sqs_send(struct nb_sqs *s, const char *queue_arn, const char *body, json_t *attrs,
             nb_sqs_sent_cb cb, void *data);
json_t *sqs_receive_internal(struct nb_sqs *s, const char *queue_arn, int max, int vis);
int sqs_delete_internal(struct nb_sqs *s, const char *queue_arn, const char *receipt_handle,
                        nb_sqs_done_cb cb, void *data);
int sqs_watch(struct nb_sqs *s, const char *queue_arn, nb_sqs_watch_cb cb, void *data);
/* esm: 0 when queue_arn names a queue of this server (*fifo says whether it is FIFO), else
 * -ENOENT. */
int sqs_queue_info(struct nb_sqs *s, const char *queue_arn, bool *fifo);

#endif
