/*
 * commit_queue.c - group commit on one worker thread (see commit_queue.h for the contract).
 *
 * Structure: a mutex-protected singly linked list of submitted ops (tail-appended), a condition
 * variable that wakes the worker, and a list of finished ops handed back to the loop through a
 * uv_async_t. The worker takes the whole submitted list as one batch, writes it, moves it to the
 * finished list and signals; the loop side runs done callbacks in order.
 * Invariant: an op is in exactly one of submitted, the worker's current batch, or finished; its
 * status (and a copy of the batch's error) is set before it enters the finished list.
 */
#include "commit_queue.h"

#include <pthread.h>

struct nb_commit_queue {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    uv_async_t async;
    nb_commit_write_cb write;
    void *data;
    struct nb_commit_op *sub_head, **sub_tail; /* submitted, not yet taken */
    struct nb_commit_op *fin_head, **fin_tail; /* written (status in fin), not yet called back */
    bool stop;
    uint64_t batches, ops;
};

static void *worker(void *arg)
{
    struct nb_commit_queue *q = arg;
    struct nb_commit_op **batch = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->sub_head && !q->stop)
            pthread_cond_wait(&q->wake, &q->lock);
        if (!q->sub_head && q->stop)
            break;
        struct nb_commit_op *head = q->sub_head, **tail = q->sub_tail;
        q->sub_head = NULL;
        q->sub_tail = &q->sub_head;
        pthread_mutex_unlock(&q->lock);

        size_t n = 0;
        for (struct nb_commit_op *o = head; o; o = o->next) {
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                batch = xrealloc(batch, cap * sizeof(*batch));
            }
            batch[n++] = o;
        }
        struct nb_err err = {0};
        int r = q->write(q->data, batch, n, &err);
        for (size_t i = 0; i < n; i++) {
            batch[i]->status = r < 0 ? r : 0;
            batch[i]->err = NULL;
            if (r < 0) {
                batch[i]->err = xmalloc(sizeof(err));
                *batch[i]->err = err;
            }
        }

        pthread_mutex_lock(&q->lock);
        q->batches++;
        q->ops += n;
        *q->fin_tail = head;
        q->fin_tail = tail;
        uv_async_send(&q->async);
    }
    pthread_mutex_unlock(&q->lock);
    free(batch);
    return NULL;
}

/* Loop thread: runs the done callbacks of everything finished. */
static void drain(struct nb_commit_queue *q)
{
    pthread_mutex_lock(&q->lock);
    struct nb_commit_op *head = q->fin_head;
    q->fin_head = NULL;
    q->fin_tail = &q->fin_head;
    pthread_mutex_unlock(&q->lock);
    while (head) {
        struct nb_commit_op *o = head;
        head = o->next;
        o->next = NULL;
        _cleanup_free_ struct nb_err *err = steal_ptr(o->err);
        o->done(o, o->status, err);
    }
}

static void on_async(uv_async_t *a)
{
    drain(a->data);
}

struct nb_commit_queue *commit_queue_new(uv_loop_t *loop, nb_commit_write_cb write, void *data)
{
    struct nb_commit_queue *q = xcalloc(1, sizeof(*q));
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    q->write = write;
    q->data = data;
    q->sub_tail = &q->sub_head;
    q->fin_tail = &q->fin_head;
    uv_async_init(loop, &q->async, on_async);
    q->async.data = q;
    if (pthread_create(&q->thread, NULL, worker, q) != 0)
        BUG("cannot start the commit thread");
    return q;
}

void commit_queue_submit(struct nb_commit_queue *q, struct nb_commit_op *op)
{
    ASSERT(op->done);
    op->next = NULL;
    pthread_mutex_lock(&q->lock);
    ASSERT(!q->stop);
    bool was_empty = !q->sub_head;
    *q->sub_tail = op;
    q->sub_tail = &op->next;
    if (was_empty)
        pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

static void on_closed(uv_handle_t *h)
{
    struct nb_commit_queue *q = h->data;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->wake);
    free(q);
}

void commit_queue_close(struct nb_commit_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    drain(q);
    uv_close((uv_handle_t *)&q->async, on_closed);
}

void commit_queue_stats(const struct nb_commit_queue *q, uint64_t *batches, uint64_t *ops)
{
    pthread_mutex_lock((pthread_mutex_t *)&q->lock);
    *batches = q->batches;
    *ops = q->ops;
    pthread_mutex_unlock((pthread_mutex_t *)&q->lock);
}
