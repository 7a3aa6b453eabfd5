/*
 * prewarm.c - parked runtimes (see prewarm.h): demand per function, the refill timer, starting
 * and retiring parked instances.
 *
 * Invariants: a live parked instance (inst->parked, neither retired nor killed) runs its
 * function's current $LATEST snapshot, or is retired by the next sync; at most K of them live per
 * function; the refill timer is the only place parked instances start from, so neither teardown
 * nor the invoke path re-enters instance creation for them. Nothing starts while the daemon
 * drains or once the function is removed.
 */
#include "prewarm.h"

#include "daemon.h"
#include "instance.h"
#include "log.h"

#define REFILL_DELAY_MS 5 /* lets the invocation that took one run first; batches a burst */

struct nb_prewarm_state {
    uv_timer_t timer;
    struct nb_daemon *d;
};

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sync_all(struct nb_daemon *d);

static void on_refill(uv_timer_t *t)
{
    struct nb_prewarm_state *st = t->data;
    sync_all(st->d);
}

void prewarm_init(struct nb_daemon *d)
{
    struct nb_prewarm_state *st = xcalloc(1, sizeof(*st));
    st->d = d;
    uv_timer_init(d->loop, &st->timer);
    st->timer.data = st;
    uv_unref((uv_handle_t *)&st->timer);
    d->prewarm = st;
}

void prewarm_release(struct nb_daemon *d)
{
    if (!d->prewarm)
        return;
    uv_timer_stop(&d->prewarm->timer);
    uv_close((uv_handle_t *)&d->prewarm->timer, on_timer_closed);
    d->prewarm = NULL;
}

static void schedule(struct nb_daemon *d)
{
    if (d->prewarm && !d->draining && !uv_is_active((uv_handle_t *)&d->prewarm->timer))
        uv_timer_start(&d->prewarm->timer, on_refill, REFILL_DELAY_MS, 0);
}

static uint64_t window_ns(const struct nb_daemon *d)
{
    return (uint64_t)d->cfg.keep_warm_s * 1000000000ull;
}

/* Whether parked instances are kept for fn: a Node.js runtime, parking on, and the function does
 * not opt out with NIMBUS_PARK=0 (an init with side effects it wants run only on demand). */
static bool eligible(const struct nb_daemon *d, const struct nb_fn *fn)
{
    if (fn->cfg->kind != NB_RT_NODE || d->cfg.node_park_max <= 0 || d->cfg.keep_warm_s <= 0)
        return false;
    json_t *v = json_object_get(fn->cfg->env, "NIMBUS_PARK");
    return !(json_is_string(v) && !strcmp(json_string_value(v), "0"));
}

static bool live(const struct nb_instance *inst)
{
    return inst->state != INST_DEAD && !inst->retire && !inst->killed;
}

/* K: how many parked instances fn should have now. */
static int wanted(struct nb_daemon *d, struct nb_fn *fn)
{
    if (!eligible(d, fn) || fn->removed || d->draining || !fn->prewarm.last_invoke_ns ||
        mono_ns() - fn->prewarm.last_invoke_ns >= window_ns(d))
        return 0;
    int k = fn->prewarm.peak;
    return k > d->cfg.node_park_max ? (int)d->cfg.node_park_max : k;
}

static void retire(struct nb_instance *inst, const char *why)
{
    inst->retire = true;
    if (inst->state == INST_IDLE)
        instance_kill(inst, why);
}

static void sync_fn(struct nb_daemon *d, struct nb_fn *fn)
{
    int want = wanted(d, fn), count = 0;
    if (!want && fn->prewarm.cold_inflight == 0)
        fn->prewarm.peak = 0; /* quiet: demand is measured afresh */
    for (struct nb_instance *inst = fn->pool.all_head, *next; inst; inst = next) {
        next = inst->all_next;
        if (!inst->parked || !live(inst))
            continue;
        if (inst->cfg != fn->cfg || count >= want)
            retire(inst, "no longer wanted parked");
        else
            count++;
    }
    if (count < want)
        log_debug("parking function=%s starting=%d", fn->name, want - count);
    for (; count < want; count++)
        instance_start_parked(d, fn, fn->cfg);
}

static void sync_all(struct nb_daemon *d)
{
    for (size_t i = 0; i < d->fn_table_size; i++)
        for (struct nb_fn *fn = d->fn_table[i]; fn; fn = fn->hnext)
            if (fn->prewarm.peak || fn->pool.n_all)
                sync_fn(d, fn);
}

/* A parked instance still starting that no invocation waits for, or NULL. */
static struct nb_instance *starting_parked(struct nb_fn *fn, const struct nb_function *cfg)
{
    for (struct nb_instance *inst = fn->pool.all_head; inst; inst = inst->all_next)
        if (inst->parked && inst->state == INST_STARTING && !inst->inv && inst->cfg == cfg &&
            live(inst))
            return inst;
    return NULL;
}

struct nb_instance *prewarm_route(struct nb_invocation *inv, struct nb_instance *inst,
                                  bool *attached)
{
    struct nb_fn *fn = inv->fn;
    struct nb_daemon *d = inv->d;
    *attached = false;
    if (inv->cfg != fn->cfg) /* versions and aliases: no parking */
        return inst;
    fn->prewarm.last_invoke_ns = mono_ns();
    if (inst && !inst->parked)
        return inst; /* warm */
    if (!inst && !eligible(d, fn))
        return NULL;
    /* the cold path: a parked instance, one still starting, or a cold start */
    inv->cold_path = true;
    if (++fn->prewarm.cold_inflight > fn->prewarm.peak)
        fn->prewarm.peak = fn->prewarm.cold_inflight;
    if (inst) {
        inst->parked = false;
        metrics_parked_hit(d, fn, inv->cfg);
    } else if ((inst = starting_parked(fn, inv->cfg))) {
        inst->parked = false;
        inst->inv = inv;
        inv->inst = inst;
        *attached = true;
        inst = NULL;
    }
    log_debug("cold path function=%s parked_hit=%llu attached=%d in_flight=%d", fn->name,
              (unsigned long long)(inst ? inst->id : 0), *attached, fn->prewarm.cold_inflight);
    schedule(d);
    return inst;
}

void prewarm_cold_done(struct nb_invocation *inv)
{
    if (inv->fn->prewarm.cold_inflight > 0)
        inv->fn->prewarm.cold_inflight--;
}

void prewarm_instance_gone(struct nb_instance *inst)
{
    struct nb_fn *fn = inst->fn;
    /* died during its init on its own (not stopped by nimbus): stop parking until the next
     * cold-path invocation, which shows the error to its caller */
    if (!inst->init_done && (inst->init_failed || (!inst->killed && !inst->retire))) {
        log_warn("parked instance failed its init function=%s", fn->name);
        fn->prewarm.peak = 0;
    }
    schedule(inst->d);
}

uint64_t prewarm_expiry_ns(const struct nb_instance *inst, uint64_t keep_ns)
{
    uint64_t since = inst->idle_since_ns;
    if (inst->fn->prewarm.last_invoke_ns > since)
        since = inst->fn->prewarm.last_invoke_ns;
    return since + keep_ns;
}

int prewarm_n_ready(struct nb_fn *fn)
{
    int n = 0;
    for (struct nb_instance *inst = fn->pool.idle_head; inst; inst = inst->idle_next)
        if (inst->parked && !inst->retire)
            n++;
    return n;
}

int64_t prewarm_n_ready_all(struct nb_daemon *d)
{
    int64_t n = 0;
    for (size_t i = 0; i < d->fn_table_size; i++)
        for (struct nb_fn *fn = d->fn_table[i]; fn; fn = fn->hnext)
            n += prewarm_n_ready(fn);
    return n;
}
