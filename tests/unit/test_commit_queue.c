/*
 * test_commit_queue.c - unit tests for commit_queue.c: every op's done callback runs once, on the
 * loop thread, in submission order; ops submitted while a batch is being written are grouped
 * into later batches; a failed batch reports its error to each of its ops; close writes what is
 * still queued.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <pthread.h>

#include "commit_queue.h"

#define N 200

struct op {
    struct nb_commit_op op;
    int idx;
    int status;
    bool done;
};

struct ctx {
    pthread_t loop_thread;
    int writes;
    int fail_idx; /* a batch containing this op fails */
    int next_done;
    bool order_ok, thread_ok;
    size_t max_batch;
};

static struct ctx C;

static int write_cb(void *data, struct nb_commit_op *const *ops, size_t n, struct nb_err *err)
{
    C.writes++;
    if (n > C.max_batch)
        C.max_batch = n;
    usleep(2000); /* like an fsync: lets later submissions pile up */
    for (size_t i = 0; i < n; i++)
        if (((struct op *)ops[i])->idx == C.fail_idx)
            return err_set(err, EIO, "disk on fire");
    return 0;
}

static void done_cb(struct nb_commit_op *o, int status, const struct nb_err *err)
{
    struct op *op = (struct op *)o;
    if (!pthread_equal(pthread_self(), C.loop_thread))
        C.thread_ok = false;
    if (op->idx != C.next_done++)
        C.order_ok = false;
    op->done = true;
    op->status = status;
    if (status < 0)
        assert_string_equal(err->msg, "disk on fire");
    else
        assert_null(err);
}

static void test_batches_in_order(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    memset(&C, 0, sizeof(C));
    C.loop_thread = pthread_self();
    C.order_ok = C.thread_ok = true;
    C.fail_idx = 150;
    struct op *ops = xcalloc(N, sizeof(*ops));
    struct nb_commit_queue *q = commit_queue_new(&loop, write_cb, NULL);
    for (int i = 0; i < N; i++) {
        ops[i].idx = i;
        ops[i].op.done = done_cb;
        commit_queue_submit(q, &ops[i].op);
        if (i % 50 == 0)
            uv_run(&loop, UV_RUN_NOWAIT);
    }
    while (C.next_done < N)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(C.order_ok);
    assert_true(C.thread_ok);
    assert_true(C.writes < N); /* grouped */
    assert_true(C.max_batch > 1);
    int failed = 0;
    for (int i = 0; i < N; i++) {
        assert_true(ops[i].done);
        if (ops[i].status < 0) {
            assert_int_equal(ops[i].status, -EIO);
            failed++;
        }
    }
    assert_true(failed >= 1 && ops[150].status == -EIO);
    /* close writes what is still queued and calls back */
    struct op last = {.idx = N, .op.done = done_cb};
    commit_queue_submit(q, &last.op);
    commit_queue_close(q);
    assert_true(last.done);
    assert_int_equal(last.status, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
