/*
 * test_pool.c - admission (reserved and account concurrency, with Lambda's 429 Reasons) and the
 * warm pool (most recently used first, snapshot matching, retire, keep-warm reaping, the reaper's
 * timer armed only while an instance is idle), on a daemon struct (with a private loop for the
 * reaper test): instances here were never spawned, so stopping one only marks it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>

#include "config.h"
#include "daemon.h"
#include "daemon_fixture.h"
#include "function.h"
#include "instance.h"
#include "registry.h"

static const char *const RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded";
static const char *const ACCOUNT = "ConcurrentInvocationLimitExceeded";

static struct nb_daemon D;

static int setup(void **state)
{
    fixture_daemon_init(&D);
    return 0;
}

static int teardown(void **state)
{
    fixture_daemon_release(&D);
    return 0;
}

static struct nb_fn *add_fn(const char *name, int reserved)
{
    struct nb_fn *fn = fixture_add_fn(&D, name);
    if (reserved >= 0)
        registry_set_config(&D, fn, function_with_concurrency(fn->cfg, reserved));
    return fn;
}

static void test_reserved_zero_refuses(void **state)
{
    struct nb_fn *fn = add_fn("zero", 0);
    assert_string_equal(pool_admit(&D, fn, fn->cfg), RESERVED);
    assert_int_equal(D.inflight, 0);
}

static void test_reserved_caps_function(void **state)
{
    struct nb_fn *fn = add_fn("two", 2);
    assert_null(pool_admit(&D, fn, fn->cfg));
    assert_null(pool_admit(&D, fn, fn->cfg));
    assert_string_equal(pool_admit(&D, fn, fn->cfg), RESERVED);
    assert_int_equal(fn->pool.inflight, 2);
    assert_int_equal(D.inflight_unreserved, 0); /* reserved capacity is not the shared pool */
    pool_release(&D, fn, fn->cfg);
    assert_null(pool_admit(&D, fn, fn->cfg));
    pool_release(&D, fn, fn->cfg);
    pool_release(&D, fn, fn->cfg);
    assert_int_equal(D.inflight, 0);
}

static void test_account_limit_and_unreserved_share(void **state)
{
    D.cfg.account_concurrency = 3;
    struct nb_fn *a = add_fn("a", -1);
    for (int i = 0; i < 3; i++)
        assert_null(pool_admit(&D, a, a->cfg));
    assert_string_equal(pool_admit(&D, a, a->cfg), ACCOUNT);
    for (int i = 0; i < 3; i++)
        pool_release(&D, a, a->cfg);
    /* a reservation of 2 leaves 1 for everyone else, while b itself still gets its 2 */
    struct nb_fn *b = add_fn("b", 2);
    assert_int_equal(registry_reserved_total(&D), 2);
    assert_null(pool_admit(&D, a, a->cfg));
    assert_string_equal(pool_admit(&D, a, a->cfg), ACCOUNT);
    assert_null(pool_admit(&D, b, b->cfg));
    assert_null(pool_admit(&D, b, b->cfg));
    assert_string_equal(pool_admit(&D, b, b->cfg), RESERVED);
    assert_int_equal(D.inflight, 3);
    pool_release(&D, a, a->cfg);
    pool_release(&D, b, b->cfg);
    pool_release(&D, b, b->cfg);
    /* removing the reservation gives its share back */
    registry_set_config(&D, b, function_with_concurrency(b->cfg, -1));
    assert_int_equal(registry_reserved_total(&D), 0);
    for (int i = 0; i < 3; i++)
        assert_null(pool_admit(&D, a, a->cfg));
    for (int i = 0; i < 3; i++)
        pool_release(&D, a, a->cfg);
}

static struct nb_instance *fake_instance(struct nb_fn *fn, struct nb_function *cfg)
{
    struct nb_instance *inst = xcalloc(1, sizeof(*inst));
    inst->d = &D;
    fn_ref(fn);
    inst->fn = fn;
    inst->cfg = function_ref(cfg);
    inst->pidfd = inst->out_fd = inst->err_fd = -1;
    inst->state = INST_BUSY;
    pool_link(inst);
    return inst;
}

static void free_instance(struct nb_instance *inst)
{
    if (inst->state == INST_IDLE)
        pool_unlink_idle(inst);
    pool_unlink(inst);
    function_unref(inst->cfg);
    fn_unref(inst->fn);
    free(inst);
}

static void test_most_recently_used_first(void **state)
{
    struct nb_fn *fn = add_fn("mru", -1);
    struct nb_instance *i1 = fake_instance(fn, fn->cfg), *i2 = fake_instance(fn, fn->cfg),
                       *i3 = fake_instance(fn, fn->cfg);
    pool_push_idle(i1);
    pool_push_idle(i2);
    pool_push_idle(i3);
    assert_int_equal(fn->pool.n_idle, 3);
    assert_ptr_equal(pool_take_idle(fn, fn->cfg), i3);
    i3->state = INST_BUSY;
    assert_ptr_equal(pool_take_idle(fn, fn->cfg), i2);
    i2->state = INST_BUSY;
    pool_push_idle(i3); /* back from its invocation: warmest again */
    assert_ptr_equal(pool_take_idle(fn, fn->cfg), i3);
    i3->state = INST_BUSY;
    assert_ptr_equal(pool_take_idle(fn, fn->cfg), i1);
    i1->state = INST_BUSY;
    assert_null(pool_take_idle(fn, fn->cfg));
    assert_int_equal(fn->pool.n_idle, 0);
    free_instance(i1);
    free_instance(i2);
    free_instance(i3);
    assert_int_equal(fn->pool.n_all, 0);
}

static void test_only_current_snapshot_is_reused(void **state)
{
    struct nb_fn *fn = add_fn("snap", -1);
    struct nb_function *old = function_ref(fn->cfg);
    struct nb_instance *stale = fake_instance(fn, old);
    pool_push_idle(stale);
    struct nb_instance *retired = fake_instance(fn, fn->cfg);
    retired->retire = true;
    pool_push_idle(retired);
    /* a new snapshot (e.g. new code): idle instances of the old one must not serve it */
    struct nb_err err = {0};
    json_t *upd = json_pack("{s:i}", "MemorySize", 256);
    struct nb_function *next = function_update_config(fn->cfg, upd, &err);
    json_decref(upd);
    assert_non_null(next);
    function_unref(fn->cfg);
    fn->cfg = next; /* swap without retiring, to test the take itself */
    assert_null(pool_take_idle(fn, fn->cfg));
    assert_int_equal(fn->pool.n_idle, 2);
    free_instance(stale);
    free_instance(retired);
    function_unref(old);
}

static void test_reap_and_retire(void **state)
{
    struct nb_fn *fn = add_fn("reap", -1);
    struct nb_instance *idle = fake_instance(fn, fn->cfg), *busy = fake_instance(fn, fn->cfg);
    pool_push_idle(idle);
    D.cfg.keep_warm_s = 600;
    pool_reap(&D, false);
    assert_false(idle->killed); /* young */
    D.cfg.keep_warm_s = 0;
    pool_reap(&D, false);
    assert_true(idle->killed);
    assert_int_equal(fn->pool.n_idle, 0);
    assert_false(busy->killed); /* busy instances are never reaped */
    pool_retire_all(&D, fn);
    assert_true(busy->retire);
    assert_false(busy->killed); /* stops after its invocation, not during it */
    free_instance(idle);
    free_instance(busy);
}

/* The reaper's timer is armed only while an instance is idle, and a run with nothing left to do
 * leaves it unarmed: an idle daemon has no periodic wake-up (bench/idle.py measures it). */
static void test_reaper_armed_only_while_idle(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    D.loop = &loop;
    D.cfg.reap_interval_ms = 10;
    D.cfg.keep_warm_s = 0;
    struct nb_fn *fn = add_fn("reaper", -1);
    struct nb_instance *a = fake_instance(fn, fn->cfg), *b = fake_instance(fn, fn->cfg);
    pool_reaper_start(&D);
    assert_false(uv_is_active((uv_handle_t *)&D.reaper)); /* busy instances: nothing to reap */
    assert_int_equal(D.reaper_due_ns, 0);

    pool_push_idle(a);
    assert_true(uv_is_active((uv_handle_t *)&D.reaper));
    uint64_t due = D.reaper_due_ns;
    assert_true(due > mono_ns());
    pool_push_idle(b); /* expires later: the armed timer stays as it is */
    assert_int_equal(D.reaper_due_ns, due);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* returns once nothing is armed */
    assert_true(a->killed && b->killed);
    assert_false(uv_is_active((uv_handle_t *)&D.reaper));
    assert_int_equal(D.reaper_due_ns, 0);

    /* reused before expiry: the timer fires once, finds nothing, stays unarmed */
    struct nb_instance *c = fake_instance(fn, fn->cfg);
    pool_push_idle(c);
    assert_ptr_equal(pool_take_idle(fn, fn->cfg), c);
    c->state = INST_BUSY;
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_false(c->killed);
    assert_int_equal(D.reaper_due_ns, 0);

    /* a long window, then a reload shortening it: rescheduled for the new expiry */
    D.cfg.keep_warm_s = 600;
    pool_push_idle(c);
    assert_true(D.reaper_due_ns > mono_ns() + 500 * 1000000000ull);
    D.cfg.keep_warm_s = 0;
    pool_reaper_reschedule(&D);
    assert_true(D.reaper_due_ns < mono_ns() + 500 * 1000000000ull);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_true(c->killed);

    pool_reaper_close(&D);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    D.loop = NULL;
    free_instance(a);
    free_instance(b);
    free_instance(c);
}

/* Provisioned instances: taken first, kept by keep-warm, and their capacity set aside from the
 * shared pool (an invocation an idle one serves does not use the shared pool). */
static void test_provisioned(void **state)
{
    struct nb_fn *fn = add_fn("pc", -1);
    struct nb_function *v1 = function_publish(fn->cfg, 1, NULL);
    registry_add_version(fn, v1);
    struct nb_instance *plain = fake_instance(fn, v1), *pc = fake_instance(fn, v1);
    pc->pc_id = 7;
    pool_push_idle(pc);
    pool_push_idle(plain); /* the most recently used, yet the provisioned one serves first */
    assert_true(pool_has_idle_provisioned(fn, v1));
    assert_false(pool_has_idle_provisioned(fn, fn->cfg)); /* another snapshot */

    D.cfg.account_concurrency = 10;
    registry_set_pc_total(&D, fn, 3);
    assert_int_equal(D.pc_unreserved_total, 3);
    assert_null(pool_admit(&D, fn, v1)); /* covered by the idle provisioned instance */
    assert_int_equal(D.inflight_pc, 1);
    assert_int_equal(D.inflight_unreserved, 0);
    assert_ptr_equal(pool_take_idle(fn, v1), pc);
    assert_false(pool_has_idle_provisioned(fn, v1));
    /* the shared pool is 10 - 3 = 7 */
    for (int i = 0; i < 7; i++)
        assert_null(pool_admit(&D, fn, v1));
    assert_string_equal(pool_admit(&D, fn, v1), ACCOUNT);
    for (int i = 0; i < 8; i++)
        pool_release(&D, fn, v1);
    assert_int_equal(D.inflight, 0);
    assert_int_equal(D.inflight_pc, 0);
    assert_int_equal(D.inflight_unreserved, 0);

    /* a reservation takes the provisioned capacity out of the shared pool's accounting */
    registry_set_config(&D, fn, function_with_concurrency(fn->cfg, 5));
    assert_int_equal(D.pc_unreserved_total, 0);
    registry_set_config(&D, fn, function_with_concurrency(fn->cfg, -1));
    assert_int_equal(D.pc_unreserved_total, 3);

    pool_push_idle(pc);
    D.cfg.keep_warm_s = 0;
    pool_reap(&D, false);
    assert_true(plain->killed);
    assert_false(pc->killed); /* keep-warm never reaps provisioned instances */
    pool_reap(&D, true);
    assert_true(pc->killed); /* shutdown does */
    registry_set_pc_total(&D, fn, 0);
    free_instance(plain);
    free_instance(pc);
}

/* Parked instances (prewarm.h): a warm instance serves before a parked one, and a parked one
 * expires keep_warm_s after its function's last invocation, not after it went idle. */
static void test_parked(void **state)
{
    struct nb_fn *fn = add_fn("parked", -1);
    struct nb_instance *warm = fake_instance(fn, fn->cfg), *parked = fake_instance(fn, fn->cfg);
    parked->parked = true;
    pool_push_idle(warm);
    pool_push_idle(parked); /* the most recently idle, yet second choice */
    assert_ptr_equal(pool_take_idle(fn, fn->cfg), warm);
    warm->state = INST_BUSY;
    assert_ptr_equal(pool_take_idle(fn, fn->cfg), parked);
    parked->state = INST_BUSY;
    assert_null(pool_take_idle(fn, fn->cfg));

    pool_push_idle(warm);
    pool_push_idle(parked);
    uint64_t now = mono_ns(), two_s = 2000000000ull;
    warm->idle_since_ns = parked->idle_since_ns = now - two_s;
    fn->prewarm.last_invoke_ns = now; /* invoked just now */
    D.cfg.keep_warm_s = 1;
    uint64_t next = pool_reap(&D, false);
    assert_true(warm->killed);
    assert_false(parked->killed);
    assert_int_equal(next, now + 1000000000ull); /* the parked one's expiry */
    fn->prewarm.last_invoke_ns = now - two_s;    /* quiet for longer than the window */
    assert_int_equal(pool_reap(&D, false), UINT64_MAX);
    assert_true(parked->killed);
    fn->prewarm.last_invoke_ns = 0;
    free_instance(warm);
    free_instance(parked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reserved_zero_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_caps_function, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_limit_and_unreserved_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_most_recently_used_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_current_snapshot_is_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_and_retire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provisioned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reaper_armed_only_while_idle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
