/*
 * test_async_sched.c - Lambda's retry rules for asynchronous invocations (async_decide,
 * async_expired) and the timer heap of waiting events: function errors retried at most
 * MaximumRetryAttempts times after 1x then 2x the delay, throttles and platform errors retried
 * with a doubling capped backoff until the event's age runs out, nothing scheduled past the
 * expiry, and the heap's order under pushes, pops and removals from the middle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "async_sched.h"
#include "util.h"

static const struct nb_async_policy lambda = {
    .max_retries = 2,
    .max_age_ms = 21600000,
    .retry_delay_ms = 60000,
    .backoff_min_ms = 1000,
    .backoff_max_ms = 300000,
};

static void test_success_first_time(void **state)
{
    (void)state;
    struct nb_async_state s = {.created_ms = 1000};
    struct nb_async_decision d;
    async_decide(&lambda, &s, ASYNC_OK, 2000, &d);
    assert_int_equal(d.action, ASYNC_DONE);
    assert_string_equal(d.condition, "Success");
    assert_int_equal(s.errors, 0);
}

static void test_function_errors_one_then_two_minutes_then_exhausted(void **state)
{
    (void)state;
    struct nb_async_state s = {.created_ms = 0};
    struct nb_async_decision d;
    async_decide(&lambda, &s, ASYNC_FN_ERROR, 10, &d);
    assert_int_equal(d.action, ASYNC_RETRY);
    assert_int_equal(d.due_ms, 10 + 60000);
    async_decide(&lambda, &s, ASYNC_FN_ERROR, 60100, &d);
    assert_int_equal(d.action, ASYNC_RETRY);
    assert_int_equal(d.due_ms, 60100 + 120000);
    async_decide(&lambda, &s, ASYNC_FN_ERROR, 180200, &d);
    assert_int_equal(d.action, ASYNC_FAILED);
    assert_string_equal(d.condition, "RetriesExhausted");
    assert_int_equal(s.errors, 3);
}

static void test_zero_retries(void **state)
{
    (void)state;
    struct nb_async_policy p = lambda;
    p.max_retries = 0;
    struct nb_async_state s = {0};
    struct nb_async_decision d;
    async_decide(&p, &s, ASYNC_FN_ERROR, 5, &d);
    assert_int_equal(d.action, ASYNC_FAILED);
    assert_string_equal(d.condition, "RetriesExhausted");
}

static void test_throttles_back_off_and_do_not_use_retries(void **state)
{
    (void)state;
    struct nb_async_policy p = lambda;
    p.max_retries = 0;
    struct nb_async_state s = {.created_ms = 0};
    struct nb_async_decision d;
    uint64_t now = 0, want = 1000;
    for (int i = 0; i < 12; i++) {
        async_decide(&p, &s, i % 2 ? ASYNC_THROTTLE : ASYNC_PLATFORM, now, &d);
        assert_int_equal(d.action, ASYNC_RETRY);
        assert_int_equal(d.due_ms, now + want);
        now = d.due_ms;
        want = want * 2 > 300000 ? 300000 : want * 2;
    }
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.backoff_ms, 300000);
}

static void test_never_scheduled_past_expiry(void **state)
{
    (void)state;
    struct nb_async_policy p = lambda;
    p.max_age_ms = 60000;
    struct nb_async_state s = {.created_ms = 1000};
    struct nb_async_decision d;
    /* the first retry would be at 59,000 + 60,000: clamped to the expiry (61,000) */
    async_decide(&p, &s, ASYNC_FN_ERROR, 59000, &d);
    assert_int_equal(d.action, ASYNC_RETRY);
    assert_int_equal(d.due_ms, 61000);
    assert_false(async_expired(&p, &s, 60999));
    assert_true(async_expired(&p, &s, 61000));
    /* at or past the expiry, a throttle or an error ends the event */
    async_decide(&p, &s, ASYNC_THROTTLE, 61000, &d);
    assert_int_equal(d.action, ASYNC_FAILED);
    assert_string_equal(d.condition, "EventAgeExceeded");
    async_decide(&p, &s, ASYNC_FN_ERROR, 61000, &d);
    assert_int_equal(d.action, ASYNC_FAILED);
    assert_string_equal(d.condition, "EventAgeExceeded");
}

static void test_retries_exhausted_wins_over_age(void **state)
{
    (void)state;
    struct nb_async_policy p = lambda;
    p.max_retries = 1;
    p.max_age_ms = 100;
    struct nb_async_state s = {.created_ms = 0, .errors = 1};
    struct nb_async_decision d;
    async_decide(&p, &s, ASYNC_FN_ERROR, 500, &d);
    assert_string_equal(d.condition, "RetriesExhausted");
}

struct item {
    struct nb_heap_slot slot;
    int tag;
};

static void test_heap_order_and_remove(void **state)
{
    (void)state;
    struct nb_heap h = {0};
    enum { N = 500 };
    struct item *it = xcalloc(N, sizeof(*it));
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        it[i].slot.due_ms = (x >> 33) % 1000;
        it[i].tag = i;
        heap_push(&h, &it[i].slot);
    }
    /* remove every third from wherever it sits */
    for (int i = 0; i < N; i += 3) {
        heap_remove(&h, &it[i].slot);
        assert_int_equal(it[i].slot.idx, SIZE_MAX);
    }
    assert_int_equal(h.n, N - (N + 2) / 3);
    uint64_t last = 0;
    size_t popped = 0;
    struct nb_heap_slot *s;
    while ((s = heap_pop(&h))) {
        assert_true(s->due_ms >= last);
        last = s->due_ms;
        struct item *i = (struct item *)s;
        assert_int_not_equal(i->tag % 3, 0);
        popped++;
    }
    assert_int_equal(popped, N - (N + 2) / 3);
    assert_null(heap_peek(&h));
    heap_release(&h);
    free(it);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_first_time),
        cmocka_unit_test(test_function_errors_one_then_two_minutes_then_exhausted),
        cmocka_unit_test(test_zero_retries),
        cmocka_unit_test(test_throttles_back_off_and_do_not_use_retries),
        cmocka_unit_test(test_never_scheduled_past_expiry),
        cmocka_unit_test(test_retries_exhausted_wins_over_age),
        cmocka_unit_test(test_heap_order_and_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
