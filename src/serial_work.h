/*
 * serial_work.h - a serial work queue: jobs submitted on the loop thread run off the loop
 * (uv_queue_work) one at a time, in submission order, and each job's done callback runs back on
 * the loop thread. The daemon has one (struct nb_daemon's store_writes) for the control-plane
 * writes to the store whose reply must wait until they are durable (event invoke configs, event
 * source mappings, function URLs and routes, versions/aliases/provisioned concurrency, schedule
 * rules), so memory and disk change in the order the requests arrived.
 *
 * Contract: the caller embeds struct nb_serial_job in its own job record and submits it; the
 * record belongs to the queue until done() runs, and to the caller again from done() on: done()
 * is where the caller answers its request and frees the record, on every path.
 * done() runs exactly once per job, with status 0 when work() ran, or a negative libuv code when
 * it did not (the work could not be queued or was cancelled): the caller then answers its
 * request 500 in its API's error shape. It may run from inside serial_work_submit (when queuing
 * fails), so the caller must not touch the job after submitting it. done() may submit more jobs;
 * they go to the back of the queue.
 *
 * Shutdown: there is no stop. A submitted job always runs; the job in flight is an active libuv
 * request and each done() starts the next one, so uv_run(UV_RUN_DEFAULT) returns only once the
 * queue is empty (replies to clients that left are dropped by http.c).
 */
#ifndef NIMBUS_SERIAL_WORK_H
#define NIMBUS_SERIAL_WORK_H

#include <stdbool.h>
#include <uv.h>

/* Runs on a worker thread with the job's data; must not touch loop state. */
typedef void (*nb_serial_work_cb)(void *data);
/* Runs on the loop thread; status 0 (work ran) or a negative libuv code (it did not). */
typedef void (*nb_serial_done_cb)(void *data, int status);

struct nb_serial_job {
    /* private */
    uv_work_t work;
    void *data;
    nb_serial_work_cb work_cb;
    nb_serial_done_cb done_cb;
    struct nb_serial_work *q;
    struct nb_serial_job *next;
};

struct nb_serial_work {
    /* private */
    uv_loop_t *loop;
    struct nb_serial_job *head, *tail; /* the head's work is in flight when busy */
    bool busy;                         /* the head was handed to uv_queue_work */
    bool starting;                     /* inside start_next: no nested start */
};

/* Initialises an empty queue on loop (embedded; nothing to release: see Shutdown above). */
void serial_work_init(struct nb_serial_work *q, uv_loop_t *loop);
/* Queues job (borrowed until done runs) to run work(data) and then done(data, status). libuv
 * refuses a NULL work: done then gets UV_EINVAL, like any job that could not be queued. Loop
 * thread. */
void serial_work_submit(struct nb_serial_work *q, struct nb_serial_job *job, void *data,
                        nb_serial_work_cb work, nb_serial_done_cb done);
/* True when no job is queued or in flight. */
bool serial_work_idle(const struct nb_serial_work *q);

#endif
