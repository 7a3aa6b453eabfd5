/*
 * commit_queue.h - group commit: operations submitted on the loop thread are written in batches
 * by one worker thread (one transaction, one fsync per batch), and each operation's callback runs
 * back on the loop thread once its batch is durable (or failed).
 *
 * Contract: the caller embeds struct nb_commit_op in its own record, sets op->done and submits.
 * While one batch is being written, newly submitted ops queue up and form the next batch, so
 * under load a batch holds everything that arrived during the previous fsync (no timer, no added
 * latency when idle). write() runs on the worker thread with the ops of one batch, in
 * submission order; it must not touch loop state. done() runs on the loop thread, in submission
 * order, with status 0 or the negative code write() returned (the same for the whole batch) and
 * the error message. The op belongs to the caller again from done() on.
 * Not specific to SQS: async Lambda events can share it (one queue per database file).
 */
#ifndef NIMBUS_COMMIT_QUEUE_H
#define NIMBUS_COMMIT_QUEUE_H

#include <uv.h>

#include "err.h"

struct nb_commit_op;
typedef void (*nb_commit_done_cb)(struct nb_commit_op *op, int status, const struct nb_err *err);

struct nb_commit_op {
    nb_commit_done_cb done;
    /* private */
    struct nb_commit_op *next;
    int status;
    struct nb_err *err; /* malloc'd when the batch failed */
};

/* Writes ops[0..n) durably as one unit; returns 0 or negative with err. Worker thread. */
typedef int (*nb_commit_write_cb)(void *data, struct nb_commit_op *const *ops, size_t n,
                                  struct nb_err *err);

struct nb_commit_queue;

/* Starts the worker thread. Owned by the caller, freed by commit_queue_close. */
struct nb_commit_queue *commit_queue_new(uv_loop_t *loop, nb_commit_write_cb write, void *data);
/* Queues op (borrowed until its done callback). Loop thread. */
void commit_queue_submit(struct nb_commit_queue *q, struct nb_commit_op *op);
/* Writes what is queued, stops the worker, runs the remaining done callbacks, then frees q once
 * its async handle is closed. Loop thread; no submit afterwards. */
void commit_queue_close(struct nb_commit_queue *q);
/* Batches written so far and ops in them (for metrics and benchmarks). */
void commit_queue_stats(const struct nb_commit_queue *q, uint64_t *batches, uint64_t *ops);

#endif
