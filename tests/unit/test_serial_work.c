/*
 * test_serial_work.c - unit tests for serial_work.c: jobs run one at a time (never two works at
 * once, though libuv's pool has several threads) in submission order, on worker threads; every
 * done callback runs once, on the loop thread, in submission order, after its work; a done may
 * submit more (they go to the back); a job libuv refuses is completed with the refusal and does
 * not stall the queue; at shutdown uv_run returns only once the queue is empty, and a stopped
 * loop resumes the queue where it stood.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "serial_work.h"
#include "util.h"

#define N 64

struct job {
    struct nb_serial_job sj;
    int idx;
    bool worked, done;
    int status;
    void (*after)(struct job *j); /* extra step in done */
};

static struct {
    pthread_t loop_thread;
    uv_loop_t loop;
    struct nb_serial_work q;
    atomic_int running, max_running, next_work;
    bool work_order_ok, work_thread_ok;
    int next_done;
    bool done_order_ok, done_thread_ok, done_after_work;
    struct job jobs[N + 8];
} T;

static void work_cb(void *data)
{
    struct job *j = data;
    int now = atomic_fetch_add(&T.running, 1) + 1;
    int max = atomic_load(&T.max_running);
    while (now > max && !atomic_compare_exchange_weak(&T.max_running, &max, now))
        ;
    if (pthread_equal(pthread_self(), T.loop_thread))
        T.work_thread_ok = false;
    if (atomic_fetch_add(&T.next_work, 1) != j->idx)
        T.work_order_ok = false;
    usleep(300); /* a store write: gives a second job the chance to overlap, were it started */
    j->worked = true;
    atomic_fetch_sub(&T.running, 1);
}

static void done_cb(void *data, int status)
{
    struct job *j = data;
    if (!pthread_equal(pthread_self(), T.loop_thread))
        T.done_thread_ok = false;
    if (j->idx != T.next_done++)
        T.done_order_ok = false;
    if (status == 0 && !j->worked)
        T.done_after_work = false;
    assert_false(j->done);
    j->done = true;
    j->status = status;
    if (j->after)
        j->after(j);
}

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    T.loop_thread = pthread_self();
    T.work_order_ok = T.work_thread_ok = true;
    T.done_order_ok = T.done_thread_ok = T.done_after_work = true;
    assert_int_equal(uv_loop_init(&T.loop), 0);
    serial_work_init(&T.q, &T.loop);
    for (int i = 0; i < (int)ARRAY_SIZE(T.jobs); i++)
        T.jobs[i].idx = i;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* nothing left behind: no request or handle keeps the loop */
    assert_true(serial_work_idle(&T.q));
    assert_int_equal(uv_loop_close(&T.loop), 0);
    return 0;
}

static void submit(int i)
{
    serial_work_submit(&T.q, &T.jobs[i].sj, &T.jobs[i], work_cb, done_cb);
}

static void check_all_done(int n)
{
    assert_true(T.work_thread_ok);
    assert_true(T.work_order_ok);
    assert_true(T.done_thread_ok);
    assert_true(T.done_order_ok);
    assert_true(T.done_after_work);
    assert_int_equal(atomic_load(&T.max_running), 1);
    assert_int_equal(T.next_done, n);
    for (int i = 0; i < n; i++) {
        assert_true(T.jobs[i].done);
        assert_int_equal(T.jobs[i].status, 0);
    }
}

static void test_one_at_a_time_in_order(void **state)
{
    (void)state;
    for (int i = 0; i < N; i++)
        submit(i);
    assert_false(serial_work_idle(&T.q));
    assert_false(T.jobs[0].done); /* done never runs inside submit when the work was queued */
    assert_int_equal(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    check_all_done(N);
}

/* Jobs submitted from a done callback go behind those already queued. */
static void submit_more(struct job *j)
{
    submit(N + j->idx);
}

static void test_submit_from_done(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        T.jobs[i].after = submit_more; /* 0..3 add N..N+3 */
    for (int i = 0; i < N; i++)
        submit(i);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    /* done order: 0..N-1, then N..N+3 (their idx is their rank) */
    check_all_done(N + 4);
}

/* A job libuv refuses (NULL work: UV_EINVAL) is completed with that status, in its turn, and the
 * queue goes on; when the queue is idle its done runs inside submit. */
static void test_refused_job(void **state)
{
    (void)state;
    struct job *bad = &T.jobs[0];
    serial_work_submit(&T.q, &bad->sj, bad, NULL, done_cb);
    assert_true(bad->done); /* idle queue: completed at once */
    assert_int_equal(bad->status, UV_EINVAL);
    assert_true(serial_work_idle(&T.q));
    submit(1);
    struct job *bad2 = &T.jobs[2];
    serial_work_submit(&T.q, &bad2->sj, bad2, NULL, done_cb); /* behind job 1: waits its turn */
    assert_false(bad2->done);
    submit(3);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    assert_true(T.done_order_ok);
    assert_int_equal(T.next_done, 4);
    assert_int_equal(bad2->status, UV_EINVAL);
    assert_false(bad2->worked);
    assert_int_equal(T.jobs[1].status, 0);
    assert_int_equal(T.jobs[3].status, 0);
    assert_true(T.jobs[3].worked);
}

static void stop_loop(struct job *j)
{
    (void)j;
    uv_stop(&T.loop);
}

/* Shutdown: no job is lost. The in-flight job keeps uv_run going until the queue is empty; a loop
 * stopped in between (the daemon's final grace timer) leaves the rest queued, and running the
 * loop again finishes them in order. */
static void test_shutdown(void **state)
{
    (void)state;
    T.jobs[9].after = stop_loop;
    for (int i = 0; i < 20; i++)
        submit(i);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    assert_int_equal(T.next_done, 10);
    assert_false(serial_work_idle(&T.q));
    assert_int_equal(uv_loop_alive(&T.loop), 1); /* job 10's work holds the loop */
    assert_int_equal(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    check_all_done(20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_at_a_time_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_from_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
