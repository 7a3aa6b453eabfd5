/*
 * pool.c - the lists of a function's instances: all of them, and the idle ones in most recently
 * used order. Reuse takes from the head (warmest caches); reaping walks from the tail (oldest).
 *
 * Invariant: an instance is on its function's idle list iff its state is INST_IDLE; it is on the
 * all list from instance_start until its teardown. Admission counters (d->inflight,
 * d->inflight_unreserved, d->inflight_pc, fn->pool.inflight*) change only in pool_admit /
 * pool_release.
 */
#include "daemon.h"
#include "instance.h"
#include "log.h"

void pool_link(struct nb_instance *inst)
{
    struct nb_pool *p = &inst->fn->pool;
    inst->all_prev = NULL;
    inst->all_next = p->all_head;
    if (p->all_head)
        p->all_head->all_prev = inst;
    p->all_head = inst;
    p->n_all++;
}

void pool_unlink(struct nb_instance *inst)
{
    struct nb_pool *p = &inst->fn->pool;
    if (inst->state == INST_IDLE)
        pool_unlink_idle(inst);
    if (inst->all_prev)
        inst->all_prev->all_next = inst->all_next;
    else
        p->all_head = inst->all_next;
    if (inst->all_next)
        inst->all_next->all_prev = inst->all_prev;
    inst->all_next = inst->all_prev = NULL;
    p->n_all--;
}

void pool_push_idle(struct nb_instance *inst)
{
    struct nb_pool *p = &inst->fn->pool;
    inst->state = INST_IDLE;
    inst->idle_since_ns = mono_ns();
    inst->idle_prev = NULL;
    inst->idle_next = p->idle_head;
    if (p->idle_head)
        p->idle_head->idle_prev = inst;
    p->idle_head = inst;
    p->n_idle++;
}

void pool_unlink_idle(struct nb_instance *inst)
{
    struct nb_pool *p = &inst->fn->pool;
    if (inst->idle_prev)
        inst->idle_prev->idle_next = inst->idle_next;
    else
        p->idle_head = inst->idle_next;
    if (inst->idle_next)
        inst->idle_next->idle_prev = inst->idle_prev;
    inst->idle_next = inst->idle_prev = NULL;
    p->n_idle--;
}

struct nb_instance *pool_take_idle(struct nb_fn *fn, const struct nb_function *cfg)
{
    struct nb_instance *found = NULL;
    for (struct nb_instance *inst = fn->pool.idle_head; inst; inst = inst->idle_next) {
        if (inst->cfg == cfg && !inst->retire) {
            if (!found)
                found = inst;
            if (inst->pc_id) { /* provisioned instances serve first */
                found = inst;
                break;
            }
        }
    }
    if (found)
        pool_unlink_idle(found);
    return found;
}

bool pool_has_idle_provisioned(struct nb_fn *fn, const struct nb_function *cfg)
{
    for (struct nb_instance *inst = fn->pool.idle_head; inst; inst = inst->idle_next)
        if (inst->cfg == cfg && inst->pc_id && !inst->retire)
            return true;
    return false;
}

void pool_retire_all(struct nb_daemon *d, struct nb_fn *fn)
{
    struct nb_instance *inst = fn->pool.all_head;
    while (inst) {
        struct nb_instance *next = inst->all_next;
        inst->retire = true;
        if (inst->state == INST_IDLE)
            instance_kill(inst, "retired");
        inst = next;
    }
}

void pool_retire_snapshot(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg)
{
    struct nb_instance *inst = fn->pool.all_head;
    while (inst) {
        struct nb_instance *next = inst->all_next;
        if (inst->cfg == cfg) {
            inst->retire = true;
            if (inst->state == INST_IDLE)
                instance_kill(inst, "retired");
        }
        inst = next;
    }
}

void pool_adopt_config(struct nb_fn *fn, const struct nb_function *old, struct nb_function *cfg)
{
    for (struct nb_instance *inst = fn->pool.all_head; inst; inst = inst->all_next) {
        if (inst->cfg != old)
            continue;
        function_unref(inst->cfg);
        inst->cfg = function_ref(cfg);
    }
}

void pool_reap(struct nb_daemon *d, bool force)
{
    uint64_t now = mono_ns();
    uint64_t keep = (uint64_t)d->cfg.keep_warm_s * 1000000000ull;
    for (size_t i = 0; i < d->fn_table_size; i++) {
        for (struct nb_fn *fn = d->fn_table[i]; fn; fn = fn->hnext) {
            struct nb_instance *inst = fn->pool.idle_head;
            while (inst) {
                struct nb_instance *next = inst->idle_next;
                if (force || (!inst->pc_id && now - inst->idle_since_ns >= keep))
                    instance_kill(inst, force ? "shutdown" : "idle");
                inst = next;
            }
        }
    }
}

void pool_kill_all(struct nb_daemon *d)
{
    for (struct nb_instance *inst = d->inst_head; inst; inst = inst->g_next)
        instance_kill(inst, "shutdown");
}

const char *pool_admit(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg)
{
    int reserved = fn->cfg->reserved_concurrency; /* function-level, whatever version runs */
    if (reserved == 0 || (reserved > 0 && fn->pool.inflight >= reserved))
        return "ReservedFunctionConcurrentInvocationLimitExceeded";
    /* Without a reservation, provisioned concurrency is set aside from the shared pool: an
     * invocation an idle provisioned instance will serve (pool_take_idle prefers them) uses that
     * capacity, not the shared pool's. */
    if (reserved < 0 && pool_has_idle_provisioned(fn, cfg)) {
        d->inflight++;
        d->inflight_pc++;
        fn->pool.inflight++;
        fn->pool.inflight_pc++;
        return NULL;
    }
    /* functions without a reservation share what reservations and provisioned capacity leave */
    int64_t unreserved_cap =
        d->cfg.account_concurrency - registry_reserved_total(d) - d->pc_unreserved_total;
    if (d->inflight - d->inflight_pc + d->pc_unreserved_total >= d->cfg.account_concurrency ||
        (reserved < 0 && d->inflight_unreserved >= unreserved_cap))
        return "ConcurrentInvocationLimitExceeded";
    d->inflight++;
    fn->pool.inflight++;
    if (reserved < 0) {
        d->inflight_unreserved++;
        fn->pool.inflight_unreserved++;
    }
    return NULL;
}

void pool_release(struct nb_daemon *d, struct nb_fn *fn, const struct nb_function *cfg)
{
    (void)cfg;
    ASSERT(d->inflight > 0 && fn->pool.inflight > 0);
    d->inflight--;
    fn->pool.inflight--;
    /* Which class an invocation was admitted in is not kept: give back provisioned, then shared
     * capacity first (the reservation may also have changed since admission). Once all of fn's
     * invocations completed, exactly what was taken has been given back; in between, the counts
     * err on the side of the pool looking busier than it is. */
    if (fn->pool.inflight_pc > 0) {
        fn->pool.inflight_pc--;
        d->inflight_pc--;
    } else if (fn->pool.inflight_unreserved > 0) {
        fn->pool.inflight_unreserved--;
        d->inflight_unreserved--;
    }
}
