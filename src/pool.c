/*
 * pool.c - the lists of a function's instances: all of them, and the idle ones in most recently
 * used order. Reuse takes from the head (warmest caches); reaping walks from the tail (oldest).
 *
 * Invariant: an instance is on its function's idle list iff its state is INST_IDLE; it is on the
 * all list from instance_start until its teardown. Admission counters (d->inflight,
 * d->inflight_unreserved, d->inflight_pc, fn->pool.inflight*) change only in pool_admit /
 * pool_release.
 *
 * The keep-warm reaper is a one-shot timer armed for the earliest expiry of an idle instance, and
 * not at all while none is idle, so an idle daemon does not wake up for it. d->reaper_due_ns is
 * when it fires (0: not armed). Since every instance gets the same keep-warm window, a newly idle
 * instance expires after every armed expiry, so pool_push_idle only arms an unarmed timer; a
 * config reload (keep_warm_s changed) reschedules. The timer may fire with nothing to do (the
 * instance it was armed for was reused): it then stays unarmed. A parked instance (prewarm.h)
 * expires keep_warm_s after its function's last invocation, which may move later than the timer:
 * the run that finds it unexpired re-arms for it (one wake-up per invocation-free window).
 */
#include "daemon.h"
#include "instance.h"
#include "log.h"
#include "prewarm.h"

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

static uint64_t keep_ns(const struct nb_daemon *d)
{
    return (uint64_t)d->cfg.keep_warm_s * 1000000000ull;
}

static void on_reap(uv_timer_t *t);

/* When an idle (non-provisioned) instance expires: keep-warm after it went idle; a parked one
 * keep-warm after its function's last invocation (prewarm.h). */
static uint64_t expiry(const struct nb_instance *inst, uint64_t keep)
{
    return inst->parked ? prewarm_expiry_ns(inst, keep) : inst->idle_since_ns + keep;
}

/* Arms the reaper to fire at due (mono_ns), but not sooner than reap_interval_ms from now. */
static void reaper_arm(struct nb_daemon *d, uint64_t due)
{
    uint64_t now = mono_ns();
    uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
    if (ms < (uint64_t)d->cfg.reap_interval_ms)
        ms = (uint64_t)d->cfg.reap_interval_ms;
    d->reaper_due_ns = now + ms * 1000000;
    uv_timer_start(&d->reaper, on_reap, ms, 0);
}

static void on_reap(uv_timer_t *t)
{
    struct nb_daemon *d = t->data;
    d->reaper_due_ns = 0;
    uint64_t next = pool_reap(d, false);
    if (next != UINT64_MAX)
        reaper_arm(d, next);
}

void pool_reaper_start(struct nb_daemon *d)
{
    uv_timer_init(d->loop, &d->reaper);
    d->reaper.data = d;
    d->reaper_on = true;
    d->reaper_due_ns = 0;
    pool_reaper_reschedule(d); /* instances idle already (none at start-up today) */
}

void pool_reaper_close(struct nb_daemon *d)
{
    if (!d->reaper_on)
        return;
    d->reaper_on = false;
    d->reaper_due_ns = 0;
    uv_close((uv_handle_t *)&d->reaper, NULL); /* embedded in d, which outlives the loop */
}

void pool_reaper_reschedule(struct nb_daemon *d)
{
    if (!d->reaper_on)
        return;
    uv_timer_stop(&d->reaper);
    d->reaper_due_ns = 0;
    uint64_t earliest = UINT64_MAX;
    for (size_t i = 0; i < d->fn_table_size; i++)
        for (struct nb_fn *fn = d->fn_table[i]; fn; fn = fn->hnext)
            for (struct nb_instance *inst = fn->pool.idle_head; inst; inst = inst->idle_next)
                if (!inst->pc_id && expiry(inst, keep_ns(d)) < earliest)
                    earliest = expiry(inst, keep_ns(d));
    if (earliest != UINT64_MAX)
        reaper_arm(d, earliest);
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
    struct nb_daemon *d = inst->d;
    if (d && d->reaper_on && !d->reaper_due_ns)
        reaper_arm(d, inst->idle_since_ns + keep_ns(d));
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
            if (!found || (found->parked && !inst->parked))
                found = inst;  /* warm before parked (a parked one serves a cold start) */
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

uint64_t pool_reap(struct nb_daemon *d, bool force)
{
    uint64_t now = mono_ns();
    uint64_t keep = keep_ns(d), earliest = UINT64_MAX;
    for (size_t i = 0; i < d->fn_table_size; i++) {
        for (struct nb_fn *fn = d->fn_table[i]; fn; fn = fn->hnext) {
            struct nb_instance *inst = fn->pool.idle_head;
            while (inst) {
                struct nb_instance *next = inst->idle_next;
                if (force || (!inst->pc_id && now >= expiry(inst, keep)))
                    instance_kill(inst, force ? "shutdown" : "idle");
                else if (!inst->pc_id && expiry(inst, keep) < earliest)
                    earliest = expiry(inst, keep); /* provisioned ones never expire */
                inst = next;
            }
        }
    }
    return earliest;
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
