/*
 * serial_work.c - see serial_work.h. The queue is a singly linked FIFO of caller-embedded jobs;
 * only its head is ever handed to libuv (q->busy), so at most one job's work runs at a time and
 * done callbacks run in submission order. start_next() is the one place that queues work: it
 * loops (no recursion) past jobs libuv refuses, completing each with the refusal's status, and
 * q->starting keeps a submit from inside such a done() from starting a second job meanwhile.
 * Loop thread only, except run() (a worker thread, touching only its job).
 */
#include "serial_work.h"

#include "util.h"

static void after(uv_work_t *w, int status);

static void run(uv_work_t *w)
{
    struct nb_serial_job *job = w->data;
    job->work_cb(job->data);
}

/* Takes the head off the queue (it is finished: done runs next). */
static struct nb_serial_job *pop(struct nb_serial_work *q)
{
    struct nb_serial_job *job = q->head;
    q->head = job->next;
    if (!q->head)
        q->tail = NULL;
    job->next = NULL;
    return job;
}

static void start_next(struct nb_serial_work *q)
{
    if (q->starting)
        return;
    q->starting = true;
    while (q->head && !q->busy) {
        struct nb_serial_job *job = q->head;
        job->work.data = job;
        int rc = uv_queue_work(q->loop, &job->work, job->work_cb ? run : NULL, after);
        if (rc == 0) {
            q->busy = true;
            break;
        }
        pop(q);
        job->done_cb(job->data, rc);
    }
    q->starting = false;
}

static void after(uv_work_t *w, int status)
{
    struct nb_serial_job *job = w->data;
    struct nb_serial_work *q = job->q;
    ASSERT(q->busy && q->head == job);
    pop(q);
    q->busy = false;
    job->done_cb(job->data, status);
    start_next(q);
}

void serial_work_init(struct nb_serial_work *q, uv_loop_t *loop)
{
    *q = (struct nb_serial_work){.loop = loop};
}

void serial_work_submit(struct nb_serial_work *q, struct nb_serial_job *job, void *data,
                        nb_serial_work_cb work, nb_serial_done_cb done)
{
    if (!q->loop)
        BUG("serial work queue used before serial_work_init");
    *job = (struct nb_serial_job){.data = data, .work_cb = work, .done_cb = done, .q = q};
    if (q->tail)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
    start_next(q);
}

bool serial_work_idle(const struct nb_serial_work *q)
{
    return !q->head;
}
